#include "train/tfod_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "io/weights_file.h"
#include "model/tf_weights.h"
#include "model/tfod_detect.h"
#include "model/tfod_inputs.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_ops.h"
#include "model/tfod_training.h"
#include "model/tfod_weights.h"
#include "model/weights.h"

namespace mrcnn::train {
namespace {

const char* const kArch = "model.arch tf_faster_rcnn";

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// The parameters whose shape follows model.num_classes: the class logits, the box encodings per
// class and the masks per class (the box predictor's layers a detection checkpoint cannot give
// another class list).
std::set<std::string> class_dependent(const model::TfodSettings& s) {
  std::set<std::string> out = {"class_weight", "class_bias"};
  if (!s.share_box_across_classes) out.insert({"box_weight", "box_bias"});
  if (!s.masks_are_class_agnostic) out.insert({"mask_last_weight", "mask_last_bias"});
  return out;
}

bool in_extractor(const std::string& name) {
  return starts_with(name, "extractor.") || starts_with(name, "box_extractor.");
}

// The parameters the checkpoint type leaves at their initial values, whatever the file holds.
bool starts_fresh(const std::string& name, const std::string& type, const model::TfodSettings& s) {
  if (type == "classification") return !in_extractor(name);
  if (type == "detection") return class_dependent(s).count(name) > 0;
  return false;  // full
}

// A parameter the file could not give (missing, another shape) that the type does not renew:
// the mask convolutions when their depth is automatic (it follows the class count) may; anything
// else means weights of another model.
bool may_be_left(const std::string& name, const std::string& type, const model::TfodSettings& s) {
  if (starts_fresh(name, type, s)) return true;
  return type == "detection" && s.mask_conv_depth == 0 && starts_with(name, "mask_conv_");
}

// Our parameter names from a LoadReport line ("key: expected [..], found [..]").
std::string report_key(const std::string& line) { return line.substr(0, line.find(':')); }

// Loads what fits of `path`; returns the parameters left at their initial values.
std::vector<std::string> load_what_fits(model::TfodMaskRcnnImpl& net, const std::string& path,
                                        const std::string& type) {
  if (!model::tfod_is_weights_file(path)) {
    model::load_inception_resnet_v2_from_tf(path, *net.extractor(), *net.box_extractor());
    return type == "classification" ? std::vector<std::string>{} : model::load_tfod_heads_that_fit(path, net);
  }
  const model::LoadReport report = model::load_state_dict(net, read_weights_file(path), true, path);
  std::vector<std::string> left;
  for (const auto& line : report.shape_mismatch) left.push_back(report_key(line));
  for (const auto& key : report.missing) left.push_back(key);
  return left;
}

// Loads init_weights as model.tf.fine_tune_checkpoint_type says, then puts the layers the type
// renews back to their initial values; logs each layer that starts fresh.
void fine_tune_from(model::TfodMaskRcnnImpl& net, const std::string& path, const std::string& type) {
  std::map<std::string, at::Tensor> initial;
  for (const auto& item : net.named_parameters()) initial[item.key()] = item.value().detach().clone();
  const std::vector<std::string> left = load_what_fits(net, path, type);
  std::vector<std::string> foreign;
  for (const auto& name : left)
    if (!may_be_left(name, type, net.settings())) foreign.push_back(name);
  if (!foreign.empty())
    throw Error(path + ": weights of another model than this config's (" + kArch + ", fine_tune_checkpoint_type " +
                type + "): " + std::to_string(foreign.size()) + " parameter(s) missing or of another shape, first " +
                foreign.front());
  torch::NoGradGuard no_grad;
  std::set<std::string> fresh(left.begin(), left.end());
  for (auto& item : net.named_parameters())
    if (starts_fresh(item.key(), type, net.settings()) || fresh.count(item.key())) {
      item.value().copy_(initial.at(item.key()));
      fresh.insert(item.key());
    }
  log::info("{}: fine_tune_checkpoint_type {}: {} of {} parameters loaded; re-initialised:", path, type,
            net.named_parameters().size() - fresh.size(), net.named_parameters().size());
  for (const auto& name : fresh)
    if (!in_extractor(name) || type != "classification") log::info("  re-initialised {}", name);
  if (type == "classification") log::info("  re-initialised every head (rpn_*, box_*, class_*, mask_*)");
}

// The five terms as the trainer's named sums: each OD API term is already a batch mean, so it
// counts as the mean of `images` samples (data-parallel averaging then weighs processes by images).
std::map<std::string, model::LossTerm> named_terms(const model::TfodLossTerms& t, int64_t images) {
  const auto term = [&](const at::Tensor& value) { return model::LossTerm{value * static_cast<double>(images),
                                                                          static_cast<double>(images)}; };
  std::map<std::string, model::LossTerm> out = {{"loss_objectness", term(t.rpn_objectness)},
                                                {"loss_rpn_box_reg", term(t.rpn_localization)},
                                                {"loss_classifier", term(t.box_classification)},
                                                {"loss_box_reg", term(t.box_localization)}};
  if (t.mask.defined()) out["loss_mask"] = term(t.mask);
  return out;
}

class TfodModel : public TrainableModel {
 public:
  TfodModel(const model::TfodSettings& settings, const model::TfodLossSettings& loss)
      : net_(settings), loss_(loss) {}

  torch::nn::Module& module() override { return *net_; }
  // The OD API trains this extractor with its batch norms frozen (batch_norm_trainable false):
  // the module stays in eval mode, which the forward pass's training steps do not depend on.
  void train() override { net_->eval(); }
  void use_channels_last() override {}
  // (H, W, 3) pixels as (3, H, W) floats on the 0-255 scale (the 8-bit values exactly).
  at::Tensor image(const at::Tensor& pixels, const torch::Device& device, at::ScalarType) const override {
    return pixels.to(device).to(at::kFloat).permute({2, 0, 1}).contiguous();
  }
  model::BatchShape batch_shape(const std::vector<model::ImageSize>&,
                                const std::vector<model::Target>&) const override {
    return {};  // the resizer sizes every image; one process (check_tfod_training)
  }
  std::map<std::string, model::LossTerm> loss_terms(const std::vector<at::Tensor>& images,
                                                    std::vector<model::Target> targets,
                                                    const model::BatchShape&) override;
  std::vector<eval::ImageDetections> detect(const std::vector<at::Tensor>& images, float score_threshold) override {
    std::vector<eval::ImageDetections> out;
    for (const auto& image : images)
      out.push_back(model::tfod_detect_instances(*net_, image.unsqueeze(0), score_threshold));
    return out;
  }
  bool has_masks() const override { return net_->settings().predicts_masks(); }
  model::TfodMaskRcnnImpl& net() { return *net_; }

 private:
  model::TfodMaskRcnn net_;
  model::TfodLossSettings loss_;
};

std::map<std::string, model::LossTerm> TfodModel::loss_terms(const std::vector<at::Tensor>& images,
                                                             std::vector<model::Target> targets,
                                                             const model::BatchShape&) {
  std::vector<at::Tensor> pixels;
  std::vector<std::array<float, 2>> true_shapes;
  std::vector<model::TfodGroundtruth> groundtruth;
  for (size_t k = 0; k < images.size(); ++k) {
    const model::TfodInput input = net_->preprocess(images[k].unsqueeze(0));
    if (!pixels.empty() && input.pixels.sizes() != pixels.front().sizes())
      throw Error("TF OD API training: the batch's images were resized to different sizes; train.batch_size 1, or "
                  "model.tf.resizer.type fixed_shape or pad_to_max_dimension");
    pixels.push_back(input.pixels);
    true_shapes.push_back(input.true_shape);
    const auto shape = [](const std::array<float, 2>& s) {
      return model::ResizedShape{static_cast<int64_t>(s[0]), static_cast<int64_t>(s[1])};
    };
    groundtruth.push_back(model::tfod_frame_groundtruth(targets[k].boxes, targets[k].labels, targets[k].masks,
                                                        images[k].size(1), images[k].size(2),
                                                        shape(input.true_shape), shape(input.padded_shape)));
  }
  // The samplers' draws (when the candidates do not fit) come from the step's first image's seed:
  // a resumed run draws as the uninterrupted one.
  const at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(targets.empty() ? 1 : targets[0].seed);
  const at::Tensor batch = at::cat(pixels);
  const model::TfodTrainingPredictions p =
      model::tfod_training_forward(*net_, batch, true_shapes, groundtruth, loss_, generator);
  const model::TfodLossTerms terms = model::tfod_losses(p.rpn_box_encodings, p.rpn_objectness, p.anchors,
                                                          p.box_classifier, groundtruth, loss_, generator);
  return named_terms(terms, static_cast<int64_t>(images.size()));
}

}  // namespace

void check_tfod_training(const Json& config, const TrainSettings& settings, int64_t processes, bool cuda) {
  if (settings.amp != "off")
    throw Error("train.amp: " + settings.amp + ": " + kArch + " trains in float32 (use train.amp off)");
  if (settings.dtype != "float32")
    throw Error("train.dtype: " + settings.dtype + ": " + kArch + " trains in float32");
  if (settings.channels_last == "on")
    throw Error(std::string("train.channels_last: on: ") + kArch + " trains NCHW (use auto or off)");
  if (processes > 1)
    throw Error(std::string(kArch) + ": data-parallel training (" + std::to_string(processes) +
                " processes) is not supported for this family yet; train in one process");
  if (cuda)
    throw Error(std::string("--device cuda: ") + kArch + " trains on the CPU so far (not yet run on a GPU); use "
                "--device cpu");
  const Json& resizer = config["model"]["tf"]["resizer"];
  if (settings.batch_size > 1 && resizer["type"] == "keep_aspect_ratio" && !resizer["pad_to_max_dimension"].get<bool>())
    throw Error("train.batch_size: " + std::to_string(settings.batch_size) +
                ": model.tf.resizer keep_aspect_ratio without pad_to_max_dimension gives each image its own size; "
                "use train.batch_size 1, or model.tf.resizer.pad_to_max_dimension true, or fixed_shape");
}

std::function<void(int64_t, int64_t)> tfod_image_size_check(const Json& config) {
  return [resizer = model::tfod_settings_from_config(config).resizer](int64_t height, int64_t width) {
    model::tfod_check_image_size(resizer, height, width);
  };
}

std::unique_ptr<TrainableModel> make_tfod_model(const Json& config, const std::string& init_weights) {
  auto out = std::make_unique<TfodModel>(model::tfod_settings_from_config(config),
                                         model::tfod_loss_settings_from_config(config));
  if (!init_weights.empty())
    fine_tune_from(out->net(), init_weights, config["model"]["tf"]["fine_tune_checkpoint_type"].get<std::string>());
  return out;
}

}  // namespace mrcnn::train
