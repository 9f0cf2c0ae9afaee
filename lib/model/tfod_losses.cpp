#include "model/tfod_losses.h"

#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "model/tfod_ops.h"
#include "model/tfod_targets.h"

namespace mrcnn::model {

namespace {

// tf.losses.huber_loss (delta 1) per coordinate, times the row's weight, summed over the row
// (WeightedSmoothL1LocalizationLoss). predictions, targets (M, 4), weights (M) -> (M).
at::Tensor smooth_l1_rows(const at::Tensor& predictions, const at::Tensor& targets, const at::Tensor& weights) {
  const at::Tensor error = at::abs(predictions - targets);
  const at::Tensor quadratic = at::clamp_max(error, 1.0), linear = error - quadratic;
  return ((quadratic * quadratic * 0.5 + linear) * weights.unsqueeze(1)).sum(1);
}

// softmax_cross_entropy_with_logits against one-hot labels (M, int64): (M).
at::Tensor softmax_cross_entropy_rows(const at::Tensor& logits, const at::Tensor& labels) {
  return -at::log_softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1);
}

// sigmoid_cross_entropy_with_logits, elementwise.
at::Tensor sigmoid_cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  return at::clamp_min(logits, 0.0) - logits * targets + at::log1p(at::exp(-at::abs(logits)));
}

at::Tensor weights_or_ones(const TfodGroundtruth& gt) {
  return gt.weights.defined() ? gt.weights.to(at::kFloat) : at::ones({gt.boxes.size(0)}, gt.boxes.options());
}

// Each row's prediction for its target class: rows of (R, q, ...) at label - 1, zeros for the
// background (the OD API pads a background slot of zeros and picks the one-hot class).
at::Tensor for_target_class(const at::Tensor& per_class, const at::Tensor& labels) {
  if (per_class.size(1) == 1) return per_class.select(1, 0);
  const at::Tensor rows = at::arange(per_class.size(0), labels.options());
  const at::Tensor picked = per_class.index({rows, labels.clamp_min(1) - 1});
  std::vector<int64_t> shape(picked.dim(), 1);
  shape[0] = -1;
  const at::Tensor background = (labels == 0).view(shape);
  return at::where(background, at::zeros_like(picked), picked);
}

void check_batch(int64_t batch, const std::vector<TfodGroundtruth>& groundtruth, const char* what) {
  if (static_cast<int64_t>(groundtruth.size()) != batch)
    throw Error(std::string("TF OD API loss: ") + what + " for " + std::to_string(batch) + " image(s) but groundtruth for " +
                std::to_string(groundtruth.size()));
}

}  // namespace

TfodLossSettings tfod_loss_settings_from_config(const Json& resolved) {
  const Json& tf = (resolved.contains("model") ? resolved["model"] : resolved)["tf"];
  const Json &first = tf["first_stage"], &second = tf["second_stage"];
  TfodLossSettings s;
  s.first_stage_minibatch_size = first["minibatch_size"].get<int64_t>();
  s.first_stage_positive_balance_fraction = first["positive_balance_fraction"].get<double>();
  s.first_stage_localization_weight = first["localization_loss_weight"].get<float>();
  s.first_stage_objectness_weight = first["objectness_loss_weight"].get<float>();
  s.second_stage_batch_size = second["batch_size"].get<int64_t>();
  s.second_stage_balance_fraction = second["balance_fraction"].get<double>();
  s.second_stage_localization_weight = second["localization_loss_weight"].get<float>();
  s.second_stage_classification_weight = second["classification_loss_weight"].get<float>();
  s.second_stage_mask_weight = second["mask_loss_weight"].get<float>();
  s.classification_logit_scale = second.value("classification_logit_scale", 1.0f);
  const int64_t proposals = first["max_proposals"].get<int64_t>();
  if (s.second_stage_batch_size > proposals)
    throw Error("model.tf.second_stage.batch_size: " + std::to_string(s.second_stage_batch_size) +
                " is above model.tf.first_stage.max_proposals " + std::to_string(proposals) +
                " (the box classifier samples its batch from the proposals)");
  return s;
}

std::array<at::Tensor, 2> tfod_rpn_loss(const at::Tensor& box_encodings, const at::Tensor& objectness,
                                        const at::Tensor& anchors, const std::vector<TfodGroundtruth>& groundtruth,
                                        const TfodLossSettings& settings, std::optional<at::Generator> generator) {
  check_batch(box_encodings.size(0), groundtruth, "RPN outputs");
  std::vector<at::Tensor> localization, objectness_terms;
  for (int64_t b = 0; b < box_encodings.size(0); ++b) {
    const TfodGroundtruth& gt = groundtruth[b];
    const at::Tensor labels = at::ones({gt.boxes.size(0)}, gt.boxes.options().dtype(at::kLong));
    const TfodTargets t = tfod_assign_targets(anchors, gt.boxes, labels, weights_or_ones(gt), kTfodProposalMatcher);
    const at::Tensor sampled =
        tfod_balanced_sample(t.label_weights != 0, t.labels > 0, settings.first_stage_minibatch_size,
                             settings.first_stage_positive_balance_fraction, generator)
            .to(at::kFloat);
    const at::Tensor normalizer = at::clamp_min(sampled.sum(), 1.0);
    localization.push_back(smooth_l1_rows(box_encodings[b], t.box_targets, sampled * t.box_weights).sum() / normalizer);
    objectness_terms.push_back((softmax_cross_entropy_rows(objectness[b], t.labels.clamp_max(1)) * sampled).sum() /
                               normalizer);
  }
  return {at::stack(localization).mean() * settings.first_stage_localization_weight,
          at::stack(objectness_terms).mean() * settings.first_stage_objectness_weight};
}

std::array<at::Tensor, 3> tfod_box_classifier_loss(const TfodBoxClassifierBatch& batch,
                                                   const std::vector<TfodGroundtruth>& groundtruth,
                                                   const TfodLossSettings& settings) {
  const int64_t images = batch.proposals.size(0), per_image = batch.proposals.size(1);
  check_batch(images, groundtruth, "proposals");
  const bool masks = batch.mask_logits.defined();
  const float inverse_height = 1.0f / batch.image_shape[0], inverse_width = 1.0f / batch.image_shape[1];
  std::vector<at::Tensor> localization, classification;  // per proposal, summed at once as the OD API
  at::Tensor mask_total = at::zeros({}, batch.class_logits.options()), mask_pixels = mask_total.clone();
  for (int64_t b = 0; b < images; ++b) {
    const TfodGroundtruth& gt = groundtruth[b];
    const at::Tensor proposals = batch.proposals[b];
    const TfodTargets t =
        tfod_assign_targets(proposals, gt.boxes, gt.classes, weights_or_ones(gt), kTfodDetectionMatcher);
    const int64_t count = batch.num_proposals[b].item<int64_t>();
    const at::Tensor real = (at::arange(per_image, t.labels.options()) < count).to(at::kFloat);
    const at::Tensor normalizer = at::full({}, static_cast<float>(std::max<int64_t>(count, 1) * images));
    const at::Tensor refined = for_target_class(batch.refined_box_encodings.narrow(0, b * per_image, per_image), t.labels);
    localization.push_back(smooth_l1_rows(refined, t.box_targets, t.box_weights) / normalizer * real);
    const at::Tensor logits = batch.class_logits.narrow(0, b * per_image, per_image) / settings.classification_logit_scale;
    classification.push_back(softmax_cross_entropy_rows(logits, t.labels) * t.label_weights / normalizer * real);
    if (!masks) continue;
    const at::Tensor predicted = for_target_class(batch.mask_logits.narrow(0, b * per_image, per_image), t.labels);
    const at::Tensor weights = t.box_weights * real;
    at::Tensor targets = at::zeros_like(predicted);
    if (gt.boxes.size(0) > 0) {
      if (!gt.masks.defined()) throw Error("TF OD API loss: the mask head needs groundtruth masks");
      const at::Tensor normalised = tfod_scale_boxes(proposals, inverse_height, inverse_width);
      targets = tf_crop_and_resize(gt.masks.to(at::kFloat).unsqueeze(1), normalised, t.matches.clamp_min(0),
                                   predicted.size(1), predicted.size(2))
                    .squeeze(1);
    }
    mask_total = mask_total + (sigmoid_cross_entropy(predicted, targets) * weights.view({-1, 1, 1})).sum();
    mask_pixels = mask_pixels + (weights * static_cast<double>(predicted.size(1)) * static_cast<double>(predicted.size(2))).sum();
  }
  at::Tensor mask;
  if (masks) mask = mask_total / at::clamp_min(mask_pixels, 1.0) * settings.second_stage_mask_weight;
  return {at::cat(localization).sum() * settings.second_stage_localization_weight,
          at::cat(classification).sum() * settings.second_stage_classification_weight, mask};
}

TfodLossTerms tfod_losses(const at::Tensor& rpn_box_encodings, const at::Tensor& rpn_objectness,
                          const at::Tensor& anchors, const TfodBoxClassifierBatch& batch,
                          const std::vector<TfodGroundtruth>& groundtruth, const TfodLossSettings& settings,
                          std::optional<at::Generator> generator) {
  const auto [rpn_localization, rpn_objectness_loss] =
      tfod_rpn_loss(rpn_box_encodings, rpn_objectness, anchors, groundtruth, settings, std::move(generator));
  const auto [box_localization, box_classification, mask] = tfod_box_classifier_loss(batch, groundtruth, settings);
  return {rpn_localization, rpn_objectness_loss, box_localization, box_classification, mask};
}

}  // namespace mrcnn::model
