#include "infer/detector.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <malloc.h>

#include <chrono>

#include <limits>
#include <optional>

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/precision.h"
#include "model/detect.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"

namespace mrcnn::infer {
using eval::ImageDetections;
using model::MaskRcnn;

struct Detector::Impl {
  MaskRcnn net{nullptr};
  torch::Device device{torch::kCPU};
  std::optional<at::ScalarType> autocast_dtype;  // none: float32
  std::string precision;  // fp32, bf16 or fp16 ("auto" resolved)
  int64_t batches = 0;
  BandLayout layout;
};

namespace {

// The images on the model's device, HWC 8-bit or float to CHW float. With --verbose, the time it
// took (waiting for the GPU), as detect_instances reports its stages.
std::vector<at::Tensor> upload_images(const std::vector<cv::Mat>& images, const torch::Device& device) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<at::Tensor> tensors;
  for (const cv::Mat& image : images) tensors.push_back(model::image_to_tensor(image, device));
  if (log::enabled(log::Level::Debug)) {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
    log::debug("  upload: {} ms",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  }
  return tensors;
}

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
  throw Error("precision '" + precision + "': expected auto, fp32, bf16 or fp16");
}

}  // namespace

Detector::Detector(const Json& resolved_config, const DetectorOptions& options) : impl_(std::make_unique<Impl>()) {
  // Keep freed memory in the heap instead of returning large blocks to the OS: every image
  // allocates the same big activations, and fresh pages cost a page fault each (~8% of CPU
  // inference time at 800x1333, measured by scripts/bench_infer.sh).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  if (options.threads > 0) at::set_num_threads(options.threads);
  const model::ModelSettings settings = model::ModelSettings::from_config(resolved_config);
  impl_->net = MaskRcnn(settings);
  impl_->layout = BandLayout::from_config(resolved_config, "data.train");
  const model::LoadReport report =
      model::load_state_dict(*impl_->net, read_weights_file(options.weights), options.allow_partial, options.weights);
  if (!report.complete())
    log::warn("{}: loaded {} tensors; skipped {} with other shapes, {} missing (left at their initial values), {} "
              "unexpected",
              options.weights, report.loaded.size(), report.shape_mismatch.size(), report.missing.size(),
              report.unexpected.size());
  impl_->device = options.device.kind == DeviceSpec::Kind::Cuda ? torch::Device(torch::kCUDA, options.device.index)
                                                                 : torch::Device(torch::kCPU);
  const PrecisionChoice precision =
      resolve_precision(options.precision, impl_->device.is_cuda() ? impl_->device.index() : -1);
  if (!precision.reason.empty()) log::info("precision auto: {} ({})", precision.precision, precision.reason);
  impl_->autocast_dtype = autocast_type(precision.precision);
  impl_->precision = precision.precision;
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

std::string Detector::precision() const { return impl_->precision; }

double Detector::peak_gpu_memory_mb() const {
  return impl_->device.is_cuda() ? peak_gpu_memory_mb_of(impl_->device.index()) : 0.0;
}

int64_t Detector::num_classes() const { return impl_->net->settings().num_classes; }

int64_t Detector::max_detections() const { return impl_->net->settings().roi.detections_per_img; }

std::pair<int64_t, int64_t> Detector::input_size(int64_t height, int64_t width) const {
  const model::MaskRcnnImpl& net = *impl_->net;
  return net.transform().resized_size({height, width}, net.settings().min_size.back());
}

const BandLayout& Detector::band_layout() const { return impl_->layout; }

void Detector::check_image_size(int64_t height, int64_t width) const {
  const model::MaskRcnnImpl& net = *impl_->net;
  for (const int64_t min_size : net.settings().min_size) net.transform().resized_size({height, width}, min_size);
}

std::vector<ImageDetections> Detector::detect(const std::vector<cv::Mat>& images, float score_threshold,
                                              double fixed_scale) {
  c10::InferenceMode guard;
  const std::vector<at::Tensor> tensors = upload_images(images, impl_->device);
  const AutocastScope autocast(impl_->device.type(), impl_->autocast_dtype);
  const model::Transform resize = impl_->net->transform().at_fixed_scale(fixed_scale);
  std::vector<ImageDetections> detections =
      model::detect_instances(*impl_->net, tensors, score_threshold, fixed_scale > 0 ? &resize : nullptr);
  // The peak reported is the steady state's: the first batch also holds one-time set-up (cuBLAS
  // and cuDNN workspaces; with cudnn_benchmark, the algorithm search's trial workspaces).
  if (impl_->device.is_cuda() && impl_->batches++ == 0) reset_peak_gpu_memory(impl_->device.index());
  return detections;
}

}  // namespace mrcnn::infer
