#include "train/torchvision_model.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "io/weights_file.h"
#include "model/detect.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"

namespace mrcnn::train {
namespace {

// Fine-tuning may re-initialise the class predictors (another num_classes) and the RPN's
// predictor layers (another anchor count per location: model.anchor.*); anything else that does
// not fit means the weights are of another architecture, which is an error.
void check_fine_tuning_fit(const model::LoadReport& report, const std::string& source,
                           const model::ModelSettings& settings) {
  static const char* const kPredictors[] = {"roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.",
                                            "rpn.head.cls_logits.", "rpn.head.bbox_pred."};
  std::vector<std::string> problems;
  for (const auto& m : report.shape_mismatch)
    if (std::none_of(std::begin(kPredictors), std::end(kPredictors),
                     [&](const char* prefix) { return m.rfind(prefix, 0) == 0; }))
      problems.push_back("shape mismatch: " + m);
  for (const auto& m : report.missing) problems.push_back("missing: " + m);
  for (const auto& m : report.unexpected) problems.push_back("unexpected: " + m);
  if (problems.empty()) return;
  std::string message = source + ": weights of another architecture than this config's (model.backbone " +
                        settings.backbone + "): " + std::to_string(problems.size()) + " tensors do not fit, first " +
                        problems.front();
  throw Error(message);
}

// RGB weights fine-tuned onto another band count (model.input_channels): the first convolution is
// made from the file's RGB filters (model::rgb_filters_to_bands) and no longer counts as a mismatch.
void adapt_first_conv(model::MaskRcnnImpl& net, const StateDict& weights, model::LoadReport& report,
                      const std::string& source, int64_t bands) {
  const auto mismatch = std::find_if(report.shape_mismatch.begin(), report.shape_mismatch.end(), [](const auto& m) {
    return m.rfind(std::string(model::kFirstConvKey) + ":", 0) == 0;
  });
  const auto file = std::find_if(weights.begin(), weights.end(),
                                 [](const auto& w) { return model::canonical_key(w.first) == model::kFirstConvKey; });
  if (mismatch == report.shape_mismatch.end() || file == weights.end() || file->second.dim() != 4 ||
      file->second.size(1) != 3)
    return;
  torch::NoGradGuard no_grad;
  at::Tensor conv1 = net.named_parameters()[model::kFirstConvKey];
  const at::Tensor adapted = model::rgb_filters_to_bands(file->second.to(torch::kFloat), bands);
  if (adapted.sizes() != conv1.sizes()) return;  // another kernel or width: check_fine_tuning_fit names it
  conv1.copy_(adapted);
  log::info("{}: adapted {} from 3 (RGB) to {} input bands ({})", source, model::kFirstConvKey, bands,
            bands == 1 ? "the sum of the RGB filters" : "RGB filters kept, extra bands their mean, all scaled by 3/" +
                                                           std::to_string(bands));
  report.shape_mismatch.erase(mismatch);
  report.loaded.push_back(model::kFirstConvKey);
}

void load_initial_weights(model::MaskRcnnImpl& net, const model::ModelSettings& settings, const std::string& init) {
  const StateDict weights = read_weights_file(init);
  model::LoadReport loaded = model::load_state_dict(net, weights, true, init);
  if (settings.input_channels != 3) adapt_first_conv(net, weights, loaded, init, settings.input_channels);
  check_fine_tuning_fit(loaded, init, settings);
  log::info("{}: loaded {} tensors; {} start fresh (other shapes: the class predictors when num_classes differs, "
            "the RPN predictors when the anchors per location differ)",
            init, loaded.loaded.size(), loaded.shape_mismatch.size() + loaded.missing.size());
  for (const auto& m : loaded.shape_mismatch) log::info("  re-initialised {}", m);
}

class TorchvisionModel : public TrainableModel {
 public:
  explicit TorchvisionModel(const model::ModelSettings& settings) : net_(settings) {}

  torch::nn::Module& module() override { return *net_; }
  void train() override { net_->train(); }
  void use_channels_last() override { net_->use_channels_last(); }
  at::Tensor image(const at::Tensor& pixels, const torch::Device& device, at::ScalarType dtype) const override {
    return model::pixels_to_image(pixels, device).to(dtype).contiguous();
  }
  model::BatchShape batch_shape(const std::vector<model::ImageSize>& sizes,
                                const std::vector<model::Target>& targets) const override {
    return net_->transform().batch_shape(sizes, nullptr, &targets);
  }
  std::map<std::string, model::LossTerm> loss_terms(const std::vector<at::Tensor>& images,
                                                    std::vector<model::Target> targets,
                                                    const model::BatchShape& shape) override {
    return net_->loss_terms(images, std::move(targets), nullptr, false, shape);
  }
  std::vector<eval::ImageDetections> detect(const std::vector<at::Tensor>& images, float score_threshold) override {
    return model::detect_instances(*net_, images, score_threshold);
  }
  bool has_masks() const override { return true; }  // this family always has its mask head
  model::MaskRcnnImpl& net() { return *net_; }

 private:
  model::MaskRcnn net_;
};

}  // namespace

std::unique_ptr<TrainableModel> make_torchvision_model(const model::ModelSettings& settings,
                                                       const std::string& init_weights) {
  auto out = std::make_unique<TorchvisionModel>(settings);
  if (!init_weights.empty()) load_initial_weights(out->net(), settings, init_weights);
  return out;
}

std::function<void(int64_t, int64_t)> torchvision_image_size_check(const model::ModelSettings& settings) {
  return [transform = model::Transform(settings), min_sizes = settings.min_size](int64_t height, int64_t width) {
    for (const int64_t min_size : min_sizes) transform.resized_size({height, width}, min_size);
  };
}

}  // namespace mrcnn::train
