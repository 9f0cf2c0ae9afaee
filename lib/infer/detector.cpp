#include "infer/detector.h"
#include "infer/detector_weights.h"

#include <torch/torch.h>

#include <malloc.h>

#include <chrono>

#include <limits>
#include <optional>

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/precision.h"
#include "model/autocast.h"
#include "model/detect.h"
#include "model/mask_rcnn.h"
#include "model/tfod_detect.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_ops.h"
#include "model/tfod_weights.h"
#include "model/weights.h"

namespace mrcnn::infer {
using eval::ImageDetections;
using model::MaskRcnn;

struct Detector::Impl {
  MaskRcnn net{nullptr};              // model.arch torchvision
  model::TfodMaskRcnn tf_net{nullptr};  // model.arch tf_faster_rcnn
  torch::Device device{torch::kCPU};
  std::optional<at::ScalarType> autocast_dtype;  // none: float32
  std::string precision;  // fp32, bf16 or fp16 ("auto" resolved)
  int64_t batches = 0;
  BandLayout layout;

  // The configured model with the weights loaded, on the CPU, as a state dict would give it.
  void build(const Json& resolved_config, const DetectorOptions& options);
  // Then on the device and prepared for inference (norms folded, channels-last).
  void prepare_torchvision(const DetectorOptions& options);
  void prepare_tf(const DetectorOptions& options);
  std::vector<ImageDetections> detect_tf(const std::vector<cv::Mat>& images, float score_threshold);
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

bool is_tf_family(const Json& resolved_config) { return resolved_config["model"].value("arch", "") == "tf_faster_rcnn"; }

// The TF OD API family computes in float32 only (its parity with TF is measured there): auto is
// fp32, and bf16/fp16 are refused by name.
void check_tf_precision(const std::string& precision) {
  if (precision != "auto" && precision != "fp32")
    throw Error("--precision / infer.precision " + precision +
                ": the TF OD API family (model.arch tf_faster_rcnn) runs in fp32 only");
}

// The precision the forward pass runs in, "auto" resolved, for a torchvision-family model on device;
// logs what auto chose and why.
std::string forward_precision(const std::string& configured, const torch::Device& device) {
  const PrecisionChoice choice = resolve_precision(configured, device.is_cuda() ? device.index() : -1);
  if (!choice.reason.empty()) log::info("precision auto: {} ({})", choice.precision, choice.reason);
  return choice.precision;
}

// A decoded RGB image as the TF family takes it: (1, 3, H, W) float pixels in [0, 255], the 8-bit
// values exactly (no division by 255 and back).
at::Tensor tf_image_tensor(const cv::Mat& image, const torch::Device& device) {
  if (image.channels() != 3 || (image.depth() != CV_8U && image.depth() != CV_32F))
    throw Error("the TF OD API family takes RGB images (3 bands), found " + std::to_string(image.channels()));
  const cv::Mat pixels = image.isContinuous() ? image : image.clone();
  const at::Tensor hwc = torch::from_blob(pixels.data, {pixels.rows, pixels.cols, 3},
                                          image.depth() == CV_8U ? torch::kByte : torch::kFloat);
  return hwc.to(device, torch::kFloat).permute({2, 0, 1}).unsqueeze(0).contiguous();
}

}  // namespace

Detector::Detector(const Json& resolved_config, const DetectorOptions& options) : impl_(std::make_unique<Impl>()) {
  // Keep freed memory in the heap instead of returning large blocks to the OS: every image
  // allocates the same big activations, and fresh pages cost a page fault each (~8% of CPU
  // inference time at 800x1333, measured by scripts/bench_infer.sh).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  if (options.threads > 0) at::set_num_threads(options.threads);
  impl_->layout = BandLayout::from_config(resolved_config, "data.train");
  impl_->device = options.device.kind == DeviceSpec::Kind::Cuda ? torch::Device(torch::kCUDA, options.device.index)
                                                                 : torch::Device(torch::kCPU);
  impl_->build(resolved_config, options);
  if (impl_->tf_net) impl_->prepare_tf(options);
  else impl_->prepare_torchvision(options);
  // Off by default: the mask head sees a new ROI count on almost every image, and each new shape
  // would be timed again.
  if (impl_->device.is_cuda()) at::globalContext().setBenchmarkCuDNN(options.cudnn_benchmark);
}

void Detector::Impl::build(const Json& resolved_config, const DetectorOptions& options) {
  if (is_tf_family(resolved_config)) {
    check_tf_precision(options.precision);  // model.input_channels 3: the configuration's checks
    tf_net = model::TfodMaskRcnn(model::tfod_settings_from_config(resolved_config));
    model::load_tfod_weights(*tf_net, options.weights, options.allow_partial);
    return;
  }
  net = MaskRcnn(model::ModelSettings::from_config(resolved_config));
  model::warn_if_partial(
      model::load_state_dict(*net, read_weights_file(options.weights), options.allow_partial, options.weights),
      options.weights);
}

void Detector::Impl::prepare_torchvision(const DetectorOptions& options) {
  precision = forward_precision(options.precision, device);
  autocast_dtype = model::autocast_type(precision, device.type());
  net->to(device);
  net->prepare_for_inference();
}

void Detector::Impl::prepare_tf(const DetectorOptions& options) {
  if (options.precision == "auto")
    log::info("precision auto: fp32 (the TF OD API family, model.arch tf_faster_rcnn, runs in fp32 only)");
  precision = "fp32";
  tf_net->eval();
  tf_net->to(device);
  tf_net->prepare_for_inference();
}

Detector::~Detector() = default;

StateDict loaded_model_weights(const Json& resolved_config, const DetectorOptions& options) {
  Detector::Impl impl;
  impl.layout = BandLayout::from_config(resolved_config, "data.train");
  impl.build(resolved_config, options);
  return impl.tf_net ? model::module_state_dict(*impl.tf_net) : model::module_state_dict(*impl.net);
}

std::string Detector::device_name() const { return impl_->device.str(); }

std::string Detector::precision() const { return impl_->precision; }

double Detector::peak_gpu_memory_mb() const {
  return impl_->device.is_cuda() ? peak_gpu_memory_mb_of(impl_->device.index()) : 0.0;
}

int64_t Detector::num_classes() const {
  return impl_->tf_net ? impl_->tf_net->settings().num_classes + 1 : impl_->net->settings().num_classes;
}

int64_t Detector::max_detections() const {
  return impl_->tf_net ? impl_->tf_net->settings().second_stage_nms.max_total
                       : impl_->net->settings().roi.detections_per_img;
}

bool Detector::takes_fixed_scale() const { return !impl_->tf_net; }

std::pair<int64_t, int64_t> Detector::input_size(int64_t height, int64_t width) const {
  if (impl_->tf_net) {
    const model::ResizedShape resized = model::tfod_resized_shape(impl_->tf_net->settings().resizer, height, width);
    return {resized.height, resized.width};
  }
  const model::MaskRcnnImpl& net = *impl_->net;
  return net.transform().resized_size({height, width}, net.settings().min_size.back());
}

const BandLayout& Detector::band_layout() const { return impl_->layout; }

void Detector::check_image_size(int64_t height, int64_t width) const {
  if (impl_->tf_net) {
    model::tfod_check_image_size(impl_->tf_net->settings().resizer, height, width);
    return;
  }
  const model::MaskRcnnImpl& net = *impl_->net;
  for (const int64_t min_size : net.settings().min_size) net.transform().resized_size({height, width}, min_size);
}

std::vector<ImageDetections> Detector::detect(const std::vector<cv::Mat>& images, float score_threshold,
                                              double fixed_scale) {
  if (impl_->tf_net) {
    if (fixed_scale > 0) throw Error("--tile / infer.tile.size: the TF OD API family (model.arch tf_faster_rcnn) "
                                     "does not run tiles at a fixed scale");
    return impl_->detect_tf(images, score_threshold);
  }
  c10::InferenceMode guard;
  const std::vector<at::Tensor> tensors = upload_images(images, impl_->device);
  const model::AutocastScope autocast(impl_->device.type(), impl_->autocast_dtype);
  const model::Transform resize = impl_->net->transform().at_fixed_scale(fixed_scale);
  std::vector<ImageDetections> detections =
      model::detect_instances(*impl_->net, tensors, score_threshold, fixed_scale > 0 ? &resize : nullptr);
  // The peak reported is the steady state's: the first batch also holds one-time set-up (cuBLAS
  // and cuDNN workspaces; with cudnn_benchmark, the algorithm search's trial workspaces).
  if (impl_->device.is_cuda() && impl_->batches++ == 0) reset_peak_gpu_memory(impl_->device.index());
  return detections;
}

// One image at a time: the TF OD API's model runs batches of one.
std::vector<ImageDetections> Detector::Impl::detect_tf(const std::vector<cv::Mat>& images, float score_threshold) {
  c10::InferenceMode guard;
  std::vector<ImageDetections> detections;
  for (const cv::Mat& image : images)
    detections.push_back(model::tfod_detect_instances(*tf_net, tf_image_tensor(image, device), score_threshold));
  if (device.is_cuda() && batches++ == 0) reset_peak_gpu_memory(device.index());
  return detections;
}

}  // namespace mrcnn::infer
