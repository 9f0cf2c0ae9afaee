#include "model/roi_heads.h"

#include <torch/torch.h>

#include "losses/losses.h"
#include "model/matcher.h"
#include "model/poolers.h"
#include "ops/roi_align.h"
#include "ops/boxes.h"
#include "ops/nms.h"
#include "ops/winograd_conv.h"

namespace mrcnn::model {

namespace {

// The training pieces of torchvision's roi_heads.py, one function each, with its names:
// select_training_samples (assign_targets_to_proposals, subsample, box_coder.encode),
// fastrcnn_loss, the positives' mask_proposals / pos_matched_idxs, project_masks_on_boxes and
// maskrcnn_loss. The losses are sums with their counts (LossTerm): the trainer divides.

// What select_training_samples returns, per image: the sampled candidates (proposals and
// ground-truth boxes), their labels (class, 0 = background), the ground truth each is matched to
// (0 for background) and the box coder's encoding of that ground truth.
struct TrainingSamples {
  std::vector<at::Tensor> proposals, labels, matched_idxs, regression_targets;
};

// assign_targets_to_proposals of one image: each candidate's matched ground truth (clamped to
// 0) and label (0 below the background threshold, -1 between the thresholds: never sampled).
std::pair<at::Tensor, at::Tensor> assign_targets_to_proposals(const Matcher& matcher, const at::Tensor& candidates,
                                                              const at::Tensor& gt_boxes,
                                                              const at::Tensor& gt_labels) {
  if (gt_boxes.size(0) == 0)
    return {torch::zeros({candidates.size(0)}, candidates.options().dtype(torch::kLong)),
            torch::zeros({candidates.size(0)}, candidates.options().dtype(torch::kLong))};
  const at::Tensor m = matcher(ops::box_iou(gt_boxes, candidates));
  const at::Tensor matches = m.clamp_min(0);
  at::Tensor labels = gt_labels.index_select(0, matches);
  labels.masked_fill_(m == Matcher::kBelowLow, 0);
  labels.masked_fill_(m == Matcher::kBetween, -1);
  return {matches, labels};
}

// One image of select_training_samples, appended to `samples`.
void sample_image(const Matcher& matcher, const BalancedSampler& sampler, const BoxCoder& box_coder,
                  const at::Tensor& proposals, const Target& target, TrainingSamples& samples) {
  // The ground-truth boxes join the proposals (add_gt_proposals), so that every object has a
  // positive sample. In the wider of the two types, as torch.cat promotes in torchvision: under
  // bf16 autocast the proposals are bf16 (steps of 8 px at x = 1333), and the ground truth, its
  // matches and the mask targets cut with these boxes stay float32.
  const at::ScalarType wider = at::promote_types(proposals.scalar_type(), target.boxes.scalar_type());
  const at::Tensor gt = target.boxes.to(wider);
  const at::Tensor candidates = at::cat({proposals.to(wider), gt});
  const auto [matches, labels] = assign_targets_to_proposals(matcher, candidates, gt, target.labels);
  const auto [pos, neg] = sampler(labels, target.seed ? derived_seed(target.seed, 2) : 0);
  const at::Tensor keep = std::get<0>(at::cat({pos, neg}).sort());
  const at::Tensor boxes = candidates.index_select(0, keep);
  const at::Tensor matched = matches.index_select(0, keep);
  // Without ground truth every sample is background: its (unused) target is encoded from a zero box.
  const at::Tensor gt_or_zero = gt.size(0) == 0 ? torch::zeros({1, 4}, candidates.options()) : gt;
  samples.proposals.push_back(boxes);
  samples.labels.push_back(labels.index_select(0, keep));
  samples.matched_idxs.push_back(matched);
  samples.regression_targets.push_back(box_coder.encode(gt_or_zero.index_select(0, matched), boxes));
}

// select_training_samples: each image's targets seeded by its own seed (or torch's generator).
TrainingSamples select_training_samples(const RoiSettings& settings, const BoxCoder& box_coder,
                                        const std::vector<at::Tensor>& proposals, const std::vector<Target>& targets,
                                        bool deterministic_sampling) {
  const Matcher matcher(settings.fg_iou_thresh, settings.bg_iou_thresh, /*allow_low_quality=*/false);
  const BalancedSampler sampler(settings.batch_size_per_image, settings.positive_fraction, deterministic_sampling);
  torch::NoGradGuard no_grad;
  TrainingSamples samples;
  for (size_t i = 0; i < proposals.size(); ++i)
    sample_image(matcher, sampler, box_coder, proposals[i], targets[i], samples);
  return samples;
}

// fastrcnn_loss over the sampled proposals: cross-entropy of the class logits, and smooth L1
// (beta 1/9) of the positives' deltas for their own class.
std::array<LossTerm, 2> fastrcnn_loss(const at::Tensor& class_logits, const at::Tensor& box_regression,
                                      const TrainingSamples& samples) {
  const at::Tensor labels = at::cat(samples.labels);
  const at::Tensor regression_targets = at::cat(samples.regression_targets);
  const double sampled = static_cast<double>(labels.numel());
  const at::Tensor classification = at::cross_entropy_loss(class_logits, labels, {}, at::Reduction::Sum);
  const at::Tensor pos = at::where(labels > 0)[0];
  const at::Tensor per_class = box_regression.reshape({class_logits.size(0), -1, 4});
  const at::Tensor box_loss = losses::smooth_l1_sum(per_class.index({pos, labels.index_select(0, pos)}),
                                                    regression_targets.index_select(0, pos), 1.0 / 9);
  return {LossTerm{classification, sampled}, LossTerm{box_loss, sampled}};
}

// The positive samples, whose masks are learned: mask_proposals and pos_matched_idxs of
// torchvision's forward, with their labels.
struct PositiveSamples {
  std::vector<at::Tensor> proposals, labels, matched_idxs;
};

PositiveSamples positive_samples(const TrainingSamples& samples) {
  PositiveSamples positives;
  for (size_t i = 0; i < samples.proposals.size(); ++i) {
    const at::Tensor pos = at::where(samples.labels[i] > 0)[0];
    positives.proposals.push_back(samples.proposals[i].index_select(0, pos));
    positives.labels.push_back(samples.labels[i].index_select(0, pos));
    positives.matched_idxs.push_back(samples.matched_idxs[i].index_select(0, pos));
  }
  return positives;
}

// project_masks_on_boxes: each box's target, its matched ground-truth mask cut to the box with
// ROIAlign at the mask head's resolution.
at::Tensor project_masks_on_boxes(const at::Tensor& gt_masks, const at::Tensor& boxes, const at::Tensor& matched_idxs,
                                  int64_t resolution) {
  torch::NoGradGuard no_grad;
  if (boxes.size(0) == 0) return torch::zeros({0, resolution, resolution}, boxes.options());
  const at::Tensor rois = at::cat({matched_idxs.unsqueeze(1).to(boxes.scalar_type()), boxes}, 1);
  const at::Tensor masks = gt_masks.unsqueeze(1).to(boxes.scalar_type());
  return ops::roi_align(masks, rois, 1.0, resolution, resolution, -1, false).select(1, 0);
}

// maskrcnn_loss over the positives: each one's logits for its own class against its target,
// binary cross-entropy and Dice with the configured weights.
LossTerm maskrcnn_loss(const at::Tensor& mask_logits, const PositiveSamples& positives,
                       const std::vector<Target>& targets, int64_t resolution,
                       const losses::MaskLossWeights& weights) {
  std::vector<at::Tensor> mask_targets;
  for (size_t i = 0; i < positives.proposals.size(); ++i)
    mask_targets.push_back(
        project_masks_on_boxes(targets[i].masks, positives.proposals[i], positives.matched_idxs[i], resolution));
  const at::Tensor labels = at::cat(positives.labels);
  const at::Tensor own_class = mask_logits.index({at::arange(labels.size(0), labels.options()), labels});
  const at::Tensor loss = losses::mask_loss_sum(labels.size(0) ? own_class : mask_logits, at::cat(mask_targets), weights);
  return LossTerm{loss, static_cast<double>(labels.size(0))};
}

}  // namespace

TwoMlpHeadImpl::TwoMlpHeadImpl(int64_t in_features, int64_t representation_size) {
  fc6_ = register_module("fc6", torch::nn::Linear(in_features, representation_size));
  fc7_ = register_module("fc7", torch::nn::Linear(representation_size, representation_size));
}

at::Tensor TwoMlpHeadImpl::forward(const at::Tensor& x) {
  return fc7_(fc6_(x.flatten(1)).relu_()).relu_();
}

FastRcnnPredictorImpl::FastRcnnPredictorImpl(int64_t in_features, int64_t num_classes) {
  cls_score_ = register_module("cls_score", torch::nn::Linear(in_features, num_classes));
  bbox_pred_ = register_module("bbox_pred", torch::nn::Linear(in_features, num_classes * 4));
}

std::pair<at::Tensor, at::Tensor> FastRcnnPredictorImpl::forward(const at::Tensor& x) {
  const at::Tensor flat = x.flatten(1);
  return {cls_score_(flat), bbox_pred_(flat)};
}

MaskHeadImpl::MaskHeadImpl(int64_t in_channels, int64_t channels) {
  for (int i = 0; i < 4; ++i) {
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(i == 0 ? in_channels : channels, channels, 3).padding(1));
    torch::nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
    torch::nn::init::constant_(conv->bias, 0);
    register_module(std::to_string(i), torch::nn::Sequential(conv));
    convs_.push_back(conv);
  }
}

at::Tensor MaskHeadImpl::forward(const at::Tensor& pooled) {
  // Winograd runs on channels-last maps: one layout change for the four layers, not two per layer.
  at::Tensor x = ops::winograd_applies(pooled, convs_.front()->weight) ? ops::winograd_layout(pooled) : pooled;
  for (auto& conv : convs_) x = ops::conv3x3_same(x, conv->weight, conv->bias, ops::Activation::kRelu);
  return x;
}

MaskPredictorImpl::MaskPredictorImpl(int64_t channels, int64_t num_classes) {
  conv5_mask_ = register_module(
      "conv5_mask", torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(channels, channels, 2).stride(2)));
  mask_fcn_logits_ =
      register_module("mask_fcn_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, num_classes, 1)));
  for (auto& item : named_parameters()) {
    if (item.key().find("weight") != std::string::npos)
      torch::nn::init::kaiming_normal_(item.value(), 0, torch::kFanOut, torch::kReLU);
    else
      torch::nn::init::constant_(item.value(), 0);
  }
}

at::Tensor MaskPredictorImpl::forward(const at::Tensor& x) { return mask_fcn_logits_((conv5_mask_(x)).relu_()); }

at::Tensor MaskPredictorImpl::forward_for_labels(const at::Tensor& x, const at::Tensor& labels) {
  const at::Tensor upsampled = conv5_mask_(x).relu_();  // (K, C, 2S, 2S)
  // The 1x1 logits conv restricted to each ROI's own class: one weight row per ROI.
  const at::Tensor weight = mask_fcn_logits_->weight.flatten(1).index_select(0, labels);  // (K, C)
  const at::Tensor bias = mask_fcn_logits_->bias.index_select(0, labels);
  return (at::einsum("kchw,kc->khw", {upsampled, weight}) + bias.view({-1, 1, 1})).unsqueeze(1);
}

RoiHeadsImpl::RoiHeadsImpl(const ModelSettings& settings, int64_t channels)
    : settings_(settings.roi),
      mask_settings_(settings.mask),
      mask_pool_size_(settings.mask.resolution / 2),
      box_coder_(settings.roi.box_coder_weights) {
  const int64_t pooled = channels * settings.roi.box_pool_size * settings.roi.box_pool_size;
  box_head_ = register_module("box_head", TwoMlpHead(pooled, settings.roi.representation_size));
  box_predictor_ =
      register_module("box_predictor", FastRcnnPredictor(settings.roi.representation_size, settings.num_classes));
  mask_head_ = register_module("mask_head", MaskHead(channels, settings.mask.head_channels));
  mask_predictor_ = register_module("mask_predictor", MaskPredictor(settings.mask.head_channels, settings.num_classes));
}

at::Tensor RoiHeadsImpl::box_features(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                                      const std::vector<ImageSize>& image_sizes, ImageSize largest_at_least) {
  const RoiPoolSettings pool{settings_.box_pool_size, settings_.sampling_ratio, settings_.aligned};
  return box_head_(multiscale_roi_align(features, boxes, image_sizes, pool, largest_at_least));
}

std::pair<at::Tensor, at::Tensor> RoiHeadsImpl::box_predictions(const at::Tensor& box_features) {
  return box_predictor_(box_features);
}

at::Tensor RoiHeadsImpl::mask_logits(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                                     const std::vector<ImageSize>& image_sizes, ImageSize largest_at_least) {
  const RoiPoolSettings pool{mask_pool_size_, settings_.sampling_ratio, settings_.aligned};
  return mask_predictor_(mask_head_(multiscale_roi_align(features, boxes, image_sizes, pool, largest_at_least)));
}

std::vector<Detections> RoiHeadsImpl::postprocess_boxes(const at::Tensor& class_logits,
                                                        const at::Tensor& box_regression,
                                                        const std::vector<at::Tensor>& proposals,
                                                        const std::vector<ImageSize>& image_sizes) {
  const int64_t num_classes = class_logits.size(-1);
  const at::Tensor all_proposals = at::cat(proposals, 0);
  const at::Tensor pred_boxes = box_coder_.decode(box_regression, all_proposals);  // (K, C, 4)
  const at::Tensor pred_scores = at::softmax(class_logits, -1);
  std::vector<Detections> results;
  int64_t offset = 0;
  for (size_t i = 0; i < proposals.size(); ++i) {
    const int64_t count = proposals[i].size(0);
    at::Tensor boxes = ops::clip_boxes_to_image(pred_boxes.narrow(0, offset, count), image_sizes[i]);
    at::Tensor scores = pred_scores.narrow(0, offset, count);
    offset += count;
    at::Tensor labels = at::arange(num_classes, boxes.options().dtype(at::kLong)).view({1, -1}).expand_as(scores);
    // Drop the background column, then flatten to one candidate per (proposal, class).
    boxes = boxes.narrow(1, 1, num_classes - 1).reshape({-1, 4});
    scores = scores.narrow(1, 1, num_classes - 1).reshape(-1);
    labels = labels.narrow(1, 1, num_classes - 1).reshape(-1);
    // torchvision drops low scores, then small boxes: one mask, one index step.
    at::Tensor keep = at::where((scores > settings_.score_thresh).logical_and_(ops::large_enough(boxes, 1e-2)))[0];
    boxes = boxes.index_select(0, keep);
    scores = scores.index_select(0, keep);
    labels = labels.index_select(0, keep);
    keep = ops::batched_nms(boxes, scores, labels, settings_.nms_thresh);
    keep = keep.narrow(0, 0, std::min<int64_t>(settings_.detections_per_img, keep.size(0)));
    results.push_back({boxes.index_select(0, keep), scores.index_select(0, keep), labels.index_select(0, keep), {}});
  }
  return results;
}

std::vector<Detections> RoiHeadsImpl::detect(const std::vector<at::Tensor>& features,
                                             const std::vector<at::Tensor>& proposals,
                                             const std::vector<ImageSize>& image_sizes) {
  const auto [class_logits, box_regression] = box_predictions(box_features(features, proposals, image_sizes));
  std::vector<Detections> results = postprocess_boxes(class_logits, box_regression, proposals, image_sizes);

  std::vector<at::Tensor> boxes, labels;
  for (const auto& r : results) {
    boxes.push_back(r.boxes);
    labels.push_back(r.labels);
  }
  // Only each detection's own class channel is needed: compute just that one.
  const RoiPoolSettings pool{mask_pool_size_, settings_.sampling_ratio, settings_.aligned};
  const at::Tensor pooled = multiscale_roi_align(features, boxes, image_sizes, pool);
  const at::Tensor probs = mask_predictor_->forward_for_labels(mask_head_(pooled), at::cat(labels, 0)).sigmoid();
  int64_t offset = 0;
  for (auto& r : results) {
    r.masks = probs.narrow(0, offset, r.boxes.size(0));
    offset += r.boxes.size(0);
  }
  return results;
}

std::array<LossTerm, 3> RoiHeadsImpl::losses(const std::vector<at::Tensor>& features,
                                               const std::vector<at::Tensor>& proposals,
                                               const std::vector<ImageSize>& image_sizes,
                                               const std::vector<Target>& targets, bool deterministic_sampling,
                                               ImageSize largest_at_least) {
  const TrainingSamples samples =
      select_training_samples(settings_, box_coder_, proposals, targets, deterministic_sampling);
  const auto [class_logits, box_regression] =
      box_predictions(box_features(features, samples.proposals, image_sizes, largest_at_least));
  const auto [classification, box_loss] = fastrcnn_loss(class_logits, box_regression, samples);
  const PositiveSamples positives = positive_samples(samples);
  const at::Tensor logits = mask_logits(features, positives.proposals, image_sizes, largest_at_least);
  const losses::MaskLossWeights weights{mask_settings_.bce_weight, mask_settings_.dice_weight,
                                        mask_settings_.dice_smooth};
  return {classification, box_loss, maskrcnn_loss(logits, positives, targets, mask_settings_.resolution, weights)};
}

}  // namespace mrcnn::model
