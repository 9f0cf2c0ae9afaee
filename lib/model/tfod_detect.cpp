#include "model/tfod_detect.h"

#include <torch/torch.h>

#include "core/error.h"
#include "eval/rle.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_postprocess.h"

namespace mrcnn::model {

eval::ImageDetections tfod_detect_instances(TfodMaskRcnnImpl& net, const at::Tensor& image, float score_threshold) {
  if (net.settings().number_of_stages < 2)
    throw Error("TF OD API model: number_of_stages 1 (proposals only) gives no detections to report");
  const int64_t height = image.size(2), width = image.size(3);
  const TfodOutputs out = net.forward(image);
  eval::ImageDetections result{height, width, {}, net.settings().predicts_masks()};
  const at::Tensor boxes = out.detections.boxes.to(at::kCPU).contiguous();
  const at::Tensor scores = out.detections.scores.to(at::kCPU), classes = out.detections.classes.to(at::kCPU);
  for (int64_t i = 0; i < boxes.size(0); ++i) {
    const float score = scores[i].item<float>();
    if (score < score_threshold) break;  // by decreasing score
    const float* b = boxes.data_ptr<float>() + 4 * i;  // normalised to the true image = the original image
    eval::Instance instance;
    instance.box = {b[1] * static_cast<float>(width), b[0] * static_cast<float>(height),
                    b[3] * static_cast<float>(width), b[2] * static_cast<float>(height)};
    instance.score = score;
    instance.label = classes[i].item<int64_t>() + 1;
    if (out.masks.defined()) {
      // One mask at a time and only over its box: image-sized masks would take M x H x W floats.
      const CropBlock block = tfod_reframe_mask_block(out.masks[i], out.detections.boxes[i], height, width);
      const at::Tensor binary = block.values.gt(0.5).to(at::kCPU, at::kByte).contiguous();
      instance.mask = eval::encode_rle_block(height, width, block.x0, block.y0, binary.data_ptr<uint8_t>(),
                                             binary.size(0), binary.size(1));
    }
    result.instances.push_back(std::move(instance));
  }
  return result;
}

}  // namespace mrcnn::model
