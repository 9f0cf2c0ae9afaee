#include "model/detect.h"

#include <torch/torch.h>

#include <cstring>

#include "model/stage_laps.h"
#include "ops/boxes.h"
#include "ops/paste_masks.h"

namespace mrcnn::model {

at::ScalarType pixel_dtype(const cv::Mat& image) {
  CV_Assert(image.type() == CV_8UC3 || image.depth() == CV_32F);
  return image.depth() == CV_8U ? torch::kUInt8 : torch::kFloat;
}

at::Tensor image_to_tensor(const cv::Mat& image, const torch::Device& device) {
  const cv::Mat contiguous = image.isContinuous() ? image : image.clone();
  // HWC → CHW float in [0, 1] on the device (an 8-bit image is copied while still 8-bit; to a
  // GPU from pinned memory, without waiting for it).
  const std::vector<int64_t> shape = {contiguous.rows, contiguous.cols, contiguous.channels()};
  const at::Tensor pixels = torch::from_blob(contiguous.data, shape, pixel_dtype(image));
  if (!device.is_cuda()) return pixels_to_image(pixels, device);
  // Into a page-locked block of the caching host allocator, as training stages its batches:
  // Tensor::pin_memory() of the same bytes took 7.5 ms per 800x1333 image on an H200 machine
  // (docs/BENCHMARKS.md), more than the whole model's share of a batch.
  at::Tensor pinned = torch::empty(shape, pixels.options().pinned_memory(true));
  std::memcpy(pinned.data_ptr(), contiguous.data, static_cast<size_t>(pinned.nbytes()));
  return pixels_to_image(pinned, device);
}

at::Tensor pixels_to_image(const at::Tensor& pixels, const torch::Device& device) {
  const at::Tensor image = pixels.to(device, /*non_blocking=*/pixels.is_pinned()).permute({2, 0, 1});
  // Float pixels are on the 0-255 scale too (io/image_bands.h), so that every image takes the same
  // division; div, not div_: they may be the caller's memory.
  return image.scalar_type() == torch::kUInt8 ? image.to(torch::kFloat).div_(255) : image.to(torch::kFloat).div(255);
}

std::vector<eval::ImageDetections> detect_instances(MaskRcnnImpl& net, const std::vector<at::Tensor>& tensors,
                                                    float score_threshold, const Transform* resize) {
  StageLaps laps(tensors.empty() ? c10::Device(c10::kCPU) : tensors.front().device());
  const ImageBatch batch = resize ? net.prepare_batch(tensors, *resize) : net.prepare_batch(tensors);
  laps.lap("transform");
  const std::vector<at::Tensor> features = net.backbone()(batch.tensor);
  laps.lap("backbone+fpn");
  const RpnOutput rpn = net.rpn()(batch, features);
  laps.lap("rpn");
  std::vector<Detections> detections = net.roi_heads()->detect(features, rpn.proposals, batch.image_sizes);
  laps.lap("roi heads");
  net.transform().to_original(detections, batch, /*paste_into_image=*/false);

  std::vector<eval::ImageDetections> results;
  for (size_t i = 0; i < detections.size(); ++i) {
    const Detections& d = detections[i];
    const auto [height, width] = batch.original_sizes[i];
    eval::ImageDetections out{height, width, {}};
    const at::Tensor keep = at::where(d.scores >= score_threshold)[0];
    const at::Tensor boxes = d.boxes.index_select(0, keep).to(torch::kFloat);
    // Every kept mask's crop, thresholded, in one buffer on the host (one transfer from the GPU).
    const at::Tensor masks = d.masks.index_select(0, keep).to(torch::kFloat);
    const std::vector<ops::MaskPlacement> placements = ops::mask_placements(boxes, masks.size(-1), height, width);
    const at::Tensor binary = ops::paste_masks_binary(masks, placements, 0.5);
    // The boxes written inside the image: under bf16 autocast they leave the ROI heads in bf16, whose
    // steps (4 px between 512 and 1024) put a side clipped to the resized image up to a few pixels
    // beyond the original one once scaled back (x2 560 on a 559-pixel-wide photo). The masks are
    // placed with the boxes as they are, and cut at the image's edge there.
    const at::Tensor boxes_cpu = ops::clip_boxes_to_image(boxes.cpu(), {height, width}).contiguous();
    const at::Tensor scores_cpu = d.scores.index_select(0, keep).to(torch::kFloat).cpu().contiguous();
    const at::Tensor labels_cpu = d.labels.index_select(0, keep).to(torch::kLong).cpu().contiguous();
    const auto box = boxes_cpu.accessor<float, 2>();
    const auto score = scores_cpu.accessor<float, 1>();
    const auto label = labels_cpu.accessor<int64_t, 1>();
    const uint8_t* bytes = binary.data_ptr<uint8_t>();
    for (int64_t k = 0; k < keep.size(0); ++k) {
      eval::Instance inst;
      inst.box = {box[k][0], box[k][1], box[k][2], box[k][3]};
      inst.score = score[k];
      inst.label = label[k];
      const ops::MaskPlacement& p = placements[k];
      inst.mask = p.cw == 0 ? eval::encode_rle_block(height, width, 0, 0, nullptr, 0, 0)
                           : eval::encode_rle_block(height, width, p.cx0, p.cy0, bytes, p.ch, p.cw);
      bytes += p.cw * p.ch;
      out.instances.push_back(std::move(inst));
    }
    results.push_back(std::move(out));
  }
  laps.lap("paste masks + rle");
  return results;
}

}  // namespace mrcnn::model
