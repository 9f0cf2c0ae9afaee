#include "model/detector.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <malloc.h>

#include <chrono>
#include <limits>
#include <optional>

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "model/detect.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"
#include "ops/paste_masks.h"

namespace mrcnn::model {

struct Detector::Impl {
  MaskRcnn net{nullptr};
  torch::Device device{torch::kCPU};
  std::optional<at::ScalarType> autocast_dtype;  // none: float32
  int64_t batches = 0;
};

namespace {

// Autocast of the forward pass on one device type while alive, as torch.autocast: matrix products
// and convolutions in the reduced type; our ROIAlign and NMS take float32 inputs (poolers.cpp,
// ops/nms.cpp), and the outputs are cast back to float32 before post-processing.
class AutocastScope {
 public:
  AutocastScope(at::DeviceType type, std::optional<at::ScalarType> dtype) : type_(type), active_(dtype.has_value()) {
    if (!active_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(type_);
    previous_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_dtype(type_, *dtype);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, was_enabled_);
    at::autocast::set_autocast_dtype(type_, previous_dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType type_;
  bool active_;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

std::optional<at::ScalarType> autocast_type(const std::string& precision) {
  if (precision == "fp32") return std::nullopt;
  if (precision == "bf16") return at::kBFloat16;
  if (precision == "fp16") return at::kHalf;
  throw Error("precision '" + precision + "': expected fp32, bf16 or fp16");
}

}  // namespace

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
  impl_->autocast_dtype = autocast_type(options.precision);
  if (impl_->autocast_dtype == at::kHalf && !impl_->device.is_cuda())
    throw Error("precision fp16 needs a CUDA device (on the CPU use bf16 or fp32)");
  impl_->net->to(impl_->device);
  impl_->net->prepare_for_inference();
  // Off by default: the mask head sees a new ROI count on almost every image, and each new shape
  // would be timed again.
  if (impl_->device.is_cuda()) at::globalContext().setBenchmarkCuDNN(options.cudnn_benchmark);
}

Detector::~Detector() = default;

std::string Detector::device_name() const { return impl_->device.str(); }

double Detector::peak_gpu_memory_mb() const {
  return impl_->device.is_cuda() ? peak_gpu_memory_mb_of(impl_->device.index()) : 0.0;
}

int64_t Detector::num_classes() const { return impl_->net->settings().num_classes; }

void Detector::check_image_size(int64_t height, int64_t width) const {
  const MaskRcnnImpl& net = *impl_->net;
  for (const int64_t min_size : net.settings().min_size) net.transform().resized_size({height, width}, min_size);
}

std::vector<ImageDetections> Detector::detect(const std::vector<cv::Mat>& images, float score_threshold) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> tensors;
  for (const cv::Mat& image : images) tensors.push_back(image_to_tensor(image, impl_->device));
  const AutocastScope autocast(impl_->device.type(), impl_->autocast_dtype);
  std::vector<ImageDetections> detections = detect_instances(*impl_->net, tensors, score_threshold);
  // The peak reported is the steady state's: the first batch also holds one-time set-up (cuBLAS
  // and cuDNN workspaces; with cudnn_benchmark, the algorithm search's trial workspaces).
  if (impl_->device.is_cuda() && impl_->batches++ == 0) reset_peak_gpu_memory(impl_->device.index());
  return detections;
}

at::Tensor image_to_tensor(const cv::Mat& image, const torch::Device& device) {
  CV_Assert(image.type() == CV_8UC3);
  const cv::Mat contiguous = image.isContinuous() ? image : image.clone();
  // HWC uint8 → CHW float in [0, 1] on the device (the copy happens while still 8-bit; to a
  // GPU from pinned memory, without waiting for it).
  const at::Tensor pixels = torch::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, 3}, torch::kUInt8);
  return pixels_to_image(device.is_cuda() ? pixels.pin_memory() : pixels, device);
}

at::Tensor pixels_to_image(const at::Tensor& pixels, const torch::Device& device) {
  return pixels.to(device, /*non_blocking=*/pixels.is_pinned()).permute({2, 0, 1}).to(torch::kFloat).div_(255);
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
    const at::Tensor boxes = d.boxes.index_select(0, keep).to(torch::kFloat);
    // Every kept mask's crop, thresholded, in one buffer on the host (one transfer from the GPU).
    const at::Tensor masks = d.masks.index_select(0, keep).to(torch::kFloat);
    const std::vector<ops::MaskPlacement> placements = ops::mask_placements(boxes, masks.size(-1), height, width);
    const at::Tensor binary = ops::paste_masks_binary(masks, placements, 0.5);
    const at::Tensor boxes_cpu = boxes.cpu().contiguous();
    const at::Tensor scores_cpu = d.scores.index_select(0, keep).to(torch::kFloat).cpu().contiguous();
    const at::Tensor labels_cpu = d.labels.index_select(0, keep).to(torch::kLong).cpu().contiguous();
    const auto box = boxes_cpu.accessor<float, 2>();
    const auto score = scores_cpu.accessor<float, 1>();
    const auto label = labels_cpu.accessor<int64_t, 1>();
    const uint8_t* bytes = binary.data_ptr<uint8_t>();
    for (int64_t k = 0; k < keep.size(0); ++k) {
      Instance inst;
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
