#include "model/tfod_mask_rcnn.h"

#include <torch/torch.h>

#include <cmath>
#include <utility>

#include "core/error.h"
#include "model/stage_laps.h"
#include "model/tfod_ops.h"
#include "ops/winograd_conv.h"

namespace mrcnn::model {

namespace {

// TF's SAME padding for any kernel and dilation (the odd extra pixel after).
at::Tensor conv_same_padded(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t dilation) {
  const int64_t total_h = dilation * (weight.size(2) - 1), total_w = dilation * (weight.size(3) - 1);
  if (total_h % 2 == 0 && total_w % 2 == 0)
    return at::conv2d(x, weight, bias, at::IntArrayRef{1, 1}, at::IntArrayRef{total_h / 2, total_w / 2},
                      at::IntArrayRef{dilation, dilation});
  const at::Tensor padded = at::constant_pad_nd(x, {total_w / 2, total_w - total_w / 2, total_h / 2, total_h - total_h / 2});
  return at::conv2d(padded, weight, bias, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0},
                    at::IntArrayRef{dilation, dilation});
}

// A stride-1 convolution with TF's SAME padding and a bias, then the activation. The extractor's
// and the RPN's stay on the direct kernel: the parity test holds the loaded model against TF and
// uses the prepared one only as its second noise floor, so Winograd's larger rounding there would
// go unchecked against TF. (The 256-deep mask head takes Winograd in both: see mask_head.)
at::Tensor conv_same(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t dilation = 1,
                     ops::Activation activation = ops::Activation::kNone) {
  const at::Tensor y = conv_same_padded(x, weight, bias, dilation);
  return activation == ops::Activation::kRelu ? at::relu(y) : y;
}

// A 1x1 prediction conv's NCHW output (1, A * code, h, w) as (h * w * A, code): the OD API reshapes
// NHWC, so anchors run over the grid row by row, then over the A anchors of a location.
at::Tensor per_anchor(const at::Tensor& prediction, int64_t code_size) {
  return prediction.permute({0, 2, 3, 1}).reshape({-1, code_size});
}

at::Tensor new_parameter(torch::nn::Module& module, const std::string& name, std::vector<int64_t> shape) {
  return module.register_parameter(name, torch::zeros(shape));
}

// The initial values training starts from where no checkpoint gives them (from scratch, or the
// layers fine-tuning renews), as the published config's hyperparams: the dense layers
// variance_scaling (factor 1, uniform, FAN_AVG), the convolutions truncated_normal stddev 0.01
// (here normal clipped at 2 stddev), biases zero. Loading weights replaces them.
void init_head(at::Tensor& weight) {
  torch::NoGradGuard no_grad;
  if (weight.dim() == 2) {
    const double limit = std::sqrt(3.0 / ((weight.size(0) + weight.size(1)) / 2.0));
    weight.uniform_(-limit, limit);
  } else {
    weight.normal_(0.0, 0.01).clamp_(-0.02, 0.02);
  }
}

}  // namespace

int64_t tfod_mask_conv_depth(const TfodSettings& settings, int64_t feature_channels) {
  if (settings.mask_conv_depth > 0) return settings.mask_conv_depth;
  const double weighted = 2.0 * std::log2(static_cast<double>(feature_channels)) +
                          3.0 * std::log2(static_cast<double>(settings.num_classes));
  return static_cast<int64_t>(std::pow(2.0, std::nearbyint(weighted / 5.0)));
}

TfodMaskRcnnImpl::TfodMaskRcnnImpl(TfodSettings settings) : settings_(std::move(settings)) {
  if (settings_.num_classes < 1) throw Error("TF OD API model: num_classes must be at least 1");
  extractor_ = register_module("extractor", InceptionResnetV2FirstStage());
  box_extractor_ = register_module("box_extractor", InceptionResnetV2SecondStage());
  const int64_t features = InceptionResnetV2FirstStageImpl::kOutChannels;
  const int64_t anchors = settings_.anchors.per_location(), k = settings_.rpn_kernel_size, depth = settings_.rpn_depth;
  rpn_conv_weight_ = new_parameter(*this, "rpn_conv_weight", {depth, features, k, k});
  rpn_conv_bias_ = new_parameter(*this, "rpn_conv_bias", {depth});
  rpn_box_weight_ = new_parameter(*this, "rpn_box_weight", {anchors * 4, depth, 1, 1});
  rpn_box_bias_ = new_parameter(*this, "rpn_box_bias", {anchors * 4});
  rpn_class_weight_ = new_parameter(*this, "rpn_class_weight", {anchors * 2, depth, 1, 1});
  rpn_class_bias_ = new_parameter(*this, "rpn_class_bias", {anchors * 2});
  const int64_t box_features = InceptionResnetV2SecondStageImpl::kOutChannels, classes = settings_.num_classes;
  const int64_t boxes = settings_.share_box_across_classes ? 1 : classes;
  box_weight_ = new_parameter(*this, "box_weight", {boxes * 4, box_features});
  box_bias_ = new_parameter(*this, "box_bias", {boxes * 4});
  class_weight_ = new_parameter(*this, "class_weight", {classes + 1, box_features});
  class_bias_ = new_parameter(*this, "class_bias", {classes + 1});
  if (settings_.number_of_stages >= 3 && settings_.predict_instance_masks) add_mask_head(box_features);
  init_heads();
}

void TfodMaskRcnnImpl::add_mask_head(int64_t box_features) {
  const int64_t classes = settings_.num_classes;
  const int64_t mask_depth = tfod_mask_conv_depth(settings_, box_features);
  int64_t in = box_features;
  for (int64_t i = 0; i + 1 < settings_.mask_conv_layers; ++i, in = mask_depth) {
    mask_weights_.push_back(new_parameter(*this, "mask_conv_" + std::to_string(i) + "_weight", {mask_depth, in, 3, 3}));
    mask_biases_.push_back(new_parameter(*this, "mask_conv_" + std::to_string(i) + "_bias", {mask_depth}));
  }
  const int64_t masks = settings_.masks_are_class_agnostic ? 1 : classes;
  mask_weights_.push_back(new_parameter(*this, "mask_last_weight", {masks, in, 3, 3}));
  mask_biases_.push_back(new_parameter(*this, "mask_last_bias", {masks}));
}

void TfodMaskRcnnImpl::init_heads() {
  for (at::Tensor* weight : {&rpn_conv_weight_, &rpn_box_weight_, &rpn_class_weight_, &box_weight_, &class_weight_})
    init_head(*weight);
  for (at::Tensor& weight : mask_weights_) init_head(weight);
}

void TfodMaskRcnnImpl::prepare_for_inference() {
  extractor_->fold_for_inference();
  box_extractor_->fold_for_inference();
  torch::NoGradGuard no_grad;
  for (auto& param : parameters())
    if (param.dim() == 4) param.set_data(param.contiguous(at::MemoryFormat::ChannelsLast));
}

TfodInput TfodMaskRcnnImpl::preprocess(const at::Tensor& image) const {
  if (image.dim() != 4 || image.size(0) != 1 || image.size(1) != 3)
    throw Error("TF OD API model: expected one RGB image (1, 3, H, W)");
  const ResizedShape resized = tfod_resized_shape(settings_.resizer, image.size(2), image.size(3));
  const ResizedShape padded = tfod_padded_shape(settings_.resizer, resized);
  at::Tensor pixels = tf_resize_bilinear(image.to(at::kFloat), resized.height, resized.width, false);
  pixels = at::constant_pad_nd(pixels, {0, padded.width - resized.width, 0, padded.height - resized.height}, 0.0);
  return {inception_preprocess(pixels.contiguous()),
          {static_cast<float>(resized.height), static_cast<float>(resized.width)},
          {static_cast<float>(padded.height), static_cast<float>(padded.width)}};
}

TfodRpnOutput TfodMaskRcnnImpl::rpn(const at::Tensor& pixels) {
  const at::Tensor features = extractor_(pixels);
  const at::Tensor hidden =
      at::clamp(conv_same(features, rpn_conv_weight_, rpn_conv_bias_, settings_.rpn_atrous_rate), 0.0, 6.0);
  const at::Tensor anchors = tfod_grid_anchors(settings_.anchors, features.size(2), features.size(3));
  const std::array<float, 4> window = {0.0f, 0.0f, static_cast<float>(pixels.size(2)),
                                       static_cast<float>(pixels.size(3))};
  return {features, tfod_clip_to_window(anchors, window).to(features.device()),
          per_anchor(at::conv2d(hidden, rpn_box_weight_, rpn_box_bias_), 4),
          per_anchor(at::conv2d(hidden, rpn_class_weight_, rpn_class_bias_), 2)};
}

at::Tensor TfodMaskRcnnImpl::box_classifier_features(const at::Tensor& features, const at::Tensor& boxes) {
  const at::Tensor image_index = at::zeros({boxes.size(0)}, boxes.options().dtype(at::kLong));
  const int64_t crop = settings_.initial_crop_size;
  const at::Tensor crops = tf_crop_and_resize(features, boxes, image_index, crop, crop);
  return box_extractor_(tfod_maxpool(crops, settings_.maxpool_kernel_size, settings_.maxpool_stride));
}

TfodBoxClassifierOutput TfodMaskRcnnImpl::classify(const at::Tensor& features, const at::Tensor& boxes) {
  const at::Tensor box_features = box_classifier_features(features, boxes);
  const at::Tensor pooled = box_features.mean({2, 3});  // the heads' AvgPool (reduce_mean over h, w)
  const at::Tensor refined = at::linear(pooled, box_weight_, box_bias_).view({boxes.size(0), -1, 4});
  return {box_features, refined, at::linear(pooled, class_weight_, class_bias_)};
}

at::Tensor TfodMaskRcnnImpl::mask_logits(const at::Tensor& features, const at::Tensor& boxes) {
  if (mask_weights_.empty()) throw Error("TF OD API model: this configuration predicts no masks");
  return mask_head(box_classifier_features(features, boxes));
}

at::Tensor TfodMaskRcnnImpl::mask_head(const at::Tensor& box_features) {
  if (mask_weights_.empty()) throw Error("TF OD API model: this configuration predicts no masks");
  // The OD API resizes the box features to the mask size, then convolves. The first convolution
  // runs at the features' size instead where that has fewer pixels (9x9 against 33x33: most of the
  // masks stage's time otherwise), the same sum in another order.
  const int64_t height = settings_.mask_height, width = settings_.mask_width;
  const bool resize_first = box_features.size(2) * box_features.size(3) >= height * width;
  at::Tensor x = resize_first ? tf_resize_bilinear(box_features, height, width, /*align_corners=*/true)
                              : box_features;
  for (size_t i = 0; i < mask_weights_.size(); ++i) {
    const auto activation = i + 1 == mask_weights_.size() ? ops::Activation::kNone : ops::Activation::kRelu;
    if (i == 0 && !resize_first) {
      x = tf_resize_then_conv3x3(x, height, width, /*align_corners=*/true, mask_weights_[i], mask_biases_[i]);
      if (activation == ops::Activation::kRelu) x.relu_();
      x = ops::winograd_layout(x);  // the 256-deep layers after it: one layout change for all
    } else {
      // 3x3 over every detection's mask-sized map: our Winograd where it pays (ops/winograd_conv.h:
      // 256 deep at 90 classes, held against float64 by a unit test; the parity test's 3-class
      // head, 32 deep, stays direct).
      x = ops::conv3x3_same(x, mask_weights_[i], mask_biases_[i], activation);
    }
  }
  return x;
}

TfodOutputs TfodMaskRcnnImpl::forward(const at::Tensor& image) {
  StageLaps laps(image.device());
  TfodOutputs out;
  out.input = preprocess(image);
  laps.lap("resize");
  out.rpn = rpn(out.input.pixels);
  laps.lap("first stage");
  out.proposals = tfod_proposals(out.rpn.box_encodings, out.rpn.objectness, out.rpn.anchors, settings_,
                                 out.input.true_shape, out.input.padded_shape);
  laps.lap("proposals");
  if (settings_.number_of_stages < 2) return out;
  out.box_classifier = classify(out.rpn.features, out.proposals.boxes);
  laps.lap("box classifier");
  out.detections = tfod_detections(out.box_classifier.refined_box_encodings, out.box_classifier.class_logits,
                                   out.proposals.boxes, settings_, out.input.true_shape, out.input.padded_shape);
  laps.lap("detections");
  if (mask_weights_.empty()) return out;
  // The OD API crops the detections' boxes, normalised to the true image, from the padded input's
  // features as if they were normalised to it (the two differ only with pad_to_max_dimension).
  out.mask_logits = mask_logits(out.rpn.features, out.detections.boxes);
  const at::Tensor classes = settings_.masks_are_class_agnostic ? at::zeros_like(out.detections.classes)
                                                                 : out.detections.classes;
  const at::Tensor rows = at::arange(classes.size(0), classes.options());
  out.masks = at::sigmoid(out.mask_logits.index({rows, classes}));
  laps.lap("masks");
  return out;
}

}  // namespace mrcnn::model
