#include "model/detector.h"

#include <torch/torch.h>

#include <malloc.h>

#include <chrono>
#include <limits>

#include "core/log.h"
#include "model/detect.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"

namespace mrcnn::model {

struct Detector::Impl {
  MaskRcnn net{nullptr};
  torch::Device device{torch::kCPU};
};

Detector::Detector(const Json& resolved_config, const DetectorOptions& options) : impl_(std::make_unique<Impl>()) {
  // Keep freed memory in the heap instead of returning large blocks to the OS: every image
  // allocates the same big activations, and fresh pages cost a page fault each (~8% of CPU
  // inference time at 800x1333, measured by scripts/bench_infer.sh).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  if (options.threads > 0) at::set_num_threads(options.threads);
  const ModelSettings settings = ModelSettings::from_config(resolved_config);
  impl_->net = MaskRcnn(settings);
  const LoadReport report =
      load_state_dict(*impl_->net, read_weights_file(options.weights), options.allow_partial, options.weights);
  if (!report.complete())
    log::warn("{}: loaded {} tensors; skipped {} with other shapes, {} missing (left at their initial values), {} "
              "unexpected",
              options.weights, report.loaded.size(), report.shape_mismatch.size(), report.missing.size(),
              report.unexpected.size());
  impl_->device = options.device.kind == DeviceSpec::Kind::Cuda ? torch::Device(torch::kCUDA, options.device.index)
                                                                 : torch::Device(torch::kCPU);
  impl_->net->to(impl_->device);
  impl_->net->prepare_for_inference();
}

Detector::~Detector() = default;

std::string Detector::device_name() const { return impl_->device.str(); }

int64_t Detector::num_classes() const { return impl_->net->settings().num_classes; }

std::vector<ImageDetections> Detector::detect(const std::vector<cv::Mat>& images, float score_threshold) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> tensors;
  for (const cv::Mat& image : images) tensors.push_back(image_to_tensor(image, impl_->device));
  return detect_instances(*impl_->net, tensors, score_threshold);
}

at::Tensor image_to_tensor(const cv::Mat& image, const torch::Device& device) {
  CV_Assert(image.type() == CV_8UC3);
  const cv::Mat contiguous = image.isContinuous() ? image : image.clone();
  // HWC uint8 → CHW float in [0, 1] on the device (the copy happens while still 8-bit).
  return torch::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, 3}, torch::kUInt8)
      .to(device)
      .permute({2, 0, 1})
      .to(torch::kFloat)
      .div_(255);
}

std::vector<ImageDetections> detect_instances(MaskRcnnImpl& net, const std::vector<at::Tensor>& tensors,
                                              float score_threshold) {
  // Stage times at debug level (--verbose), to see where inference time goes; on CUDA each lap
  // waits for the GPU, else the time of queued kernels would land in a later stage.
  auto last = std::chrono::steady_clock::now();
  const bool on_cuda = !tensors.empty() && tensors.front().is_cuda();
  const auto lap = [&](const char* stage) {
    if (!log::enabled(log::Level::Debug)) return;
    if (on_cuda) torch::cuda::synchronize(tensors.front().device().index());
    const auto now = std::chrono::steady_clock::now();
    log::debug("  {}: {} ms", stage, std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  };
  const ImageBatch batch = net.prepare_batch(tensors);
  lap("transform");
  const std::vector<at::Tensor> features = net.backbone()(batch.tensor);
  lap("backbone+fpn");
  const RpnOutput rpn = net.rpn()(batch, features);
  lap("rpn");
  std::vector<Detections> detections = net.roi_heads()->detect(features, rpn.proposals, batch.image_sizes);
  lap("roi heads");
  net.transform().to_original(detections, batch, /*paste_masks=*/false);

  std::vector<ImageDetections> results;
  for (size_t i = 0; i < detections.size(); ++i) {
    const Detections& d = detections[i];
    const auto [height, width] = batch.original_sizes[i];
    ImageDetections out{height, width, {}};
    const at::Tensor keep = at::where(d.scores >= score_threshold)[0];
    const at::Tensor boxes = d.boxes.index_select(0, keep);
    const std::vector<PastedMask> masks =
        paste_masks(d.masks.index_select(0, keep), boxes, batch.original_sizes[i]);
    const at::Tensor boxes_cpu = boxes.cpu().contiguous();
    const at::Tensor scores_cpu = d.scores.index_select(0, keep).cpu();
    const at::Tensor labels_cpu = d.labels.index_select(0, keep).cpu();
    for (int64_t k = 0; k < keep.size(0); ++k) {
      Instance inst;
      const float* b = boxes_cpu[k].data_ptr<float>();
      inst.box = {b[0], b[1], b[2], b[3]};
      inst.score = scores_cpu[k].item<float>();
      inst.label = labels_cpu[k].item<int64_t>();
      const PastedMask& m = masks[k];
      const at::Tensor binary = (m.probs > 0.5).to(torch::kUInt8).cpu().contiguous();
      inst.mask = binary.numel() == 0
                      ? eval::encode_rle_block(height, width, 0, 0, nullptr, 0, 0)
                      : eval::encode_rle_block(height, width, m.x0, m.y0, binary.data_ptr<uint8_t>(), binary.size(0),
                                               binary.size(1));
      out.instances.push_back(std::move(inst));
    }
    results.push_back(std::move(out));
  }
  lap("paste masks + rle");
  return results;
}

Json to_coco_results(const ImageDetections& detections, int64_t image_id, const std::string& file_name) {
  Json records = Json::array();
  for (const auto& inst : detections.instances) {
    Json r;
    r["image_id"] = image_id;
    if (!file_name.empty()) r["file_name"] = file_name;
    r["category_id"] = inst.label;
    const auto& b = inst.box;
    // Rounded to 0.01 px: enough for any metric, and keeps the files small.
    const auto round2 = [](double v) { return std::round(v * 100.0) / 100.0; };
    r["bbox"] = {round2(b[0]), round2(b[1]), round2(b[2] - b[0]), round2(b[3] - b[1])};
    r["score"] = std::round(static_cast<double>(inst.score) * 1e5) / 1e5;
    r["segmentation"] = {{"size", {detections.height, detections.width}}, {"counts", eval::rle_to_string(inst.mask)}};
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace mrcnn::model
