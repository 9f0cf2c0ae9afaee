// The TF OD API Faster / Mask R-CNN's training losses, as FasterRCNNMetaArch.loss computes them:
// the RPN's smooth L1 and objectness softmax on a balanced minibatch of anchors, the box
// classifier's smooth L1 and softmax over the (already sampled) proposals, and the mask's sigmoid
// cross-entropy against the matched groundtruth masks cropped into each positive proposal; each
// normalised and weighted as there. Boxes are absolute [ymin, xmin, ymax, xmax] in the padded
// input, float32; batches are stacked along the first dimension.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::model {

// The faster_rcnn { } fields training reads (the OD API's proto defaults).
struct TfodLossSettings {
  int64_t first_stage_minibatch_size = 256;
  double first_stage_positive_balance_fraction = 0.5;
  int64_t second_stage_batch_size = 64;
  double second_stage_balance_fraction = 0.25;
  float first_stage_localization_weight = 1.0f, first_stage_objectness_weight = 1.0f;
  float second_stage_localization_weight = 1.0f, second_stage_classification_weight = 1.0f;
  float second_stage_mask_weight = 1.0f;
  float classification_logit_scale = 1.0f;  // second_stage_classification_loss weighted_softmax
};

// The settings of a resolved configuration (model.tf.first_stage.* and second_stage.*: the
// samplers' sizes and the loss weights). Throws one Error when second_stage.batch_size exceeds
// first_stage.max_proposals (the OD API refuses to train so).
TfodLossSettings tfod_loss_settings_from_config(const Json& resolved);

// One image's groundtruth: boxes (N, 4) absolute in the padded input, classes (N, int64, from 1),
// weights (N; undefined: all 1) and masks (N, H, W) float at the padded input's size (undefined
// when there are none).
struct TfodGroundtruth {
  at::Tensor boxes, classes, weights, masks;
};

// The five terms, each already multiplied by its weight (scalars).
struct TfodLossTerms {
  at::Tensor rpn_localization, rpn_objectness, box_localization, box_classification, mask;
};

// The RPN's two terms: box encodings (B, A, 4), objectness logits with background first (B, A, 2),
// anchors (A, 4). Per image a balanced sample of first_stage_minibatch_size anchors (matched with
// 0.7 / 0.3 and every groundtruth forced to its best anchor); each term summed over it, divided by
// its size (at least 1), averaged over the batch.
std::array<at::Tensor, 2> tfod_rpn_loss(const at::Tensor& box_encodings, const at::Tensor& objectness,
                                        const at::Tensor& anchors, const std::vector<TfodGroundtruth>& groundtruth,
                                        const TfodLossSettings& settings,
                                        std::optional<at::Generator> generator = std::nullopt);

// The box classifier's output on B x P proposals (P padded; num_proposals (B) real ones).
struct TfodBoxClassifierBatch {
  at::Tensor refined_box_encodings;  // (B * P, K or 1, 4)
  at::Tensor class_logits;           // (B * P, K + 1)
  at::Tensor proposals;              // (B, P, 4) absolute
  at::Tensor num_proposals;          // (B) int64
  at::Tensor mask_logits;            // (B * P, K or 1, mask_h, mask_w); undefined: no mask term
  std::array<float, 2> image_shape{};  // the padded input's (height, width)
};

// The box classifier's terms (localization, classification, mask): proposals matched at IoU 0.5;
// per image each proposal's smooth L1 (of its target class's encoding) and softmax cross-entropy
// divided by the image's proposal count times the batch size, summed over the real proposals;
// the mask term (undefined without mask logits) summed over the positives' pixels and divided by
// their pixel count.
std::array<at::Tensor, 3> tfod_box_classifier_loss(const TfodBoxClassifierBatch& batch,
                                                   const std::vector<TfodGroundtruth>& groundtruth,
                                                   const TfodLossSettings& settings);

// Everything together (no mask term where the batch has no mask logits: an undefined tensor).
TfodLossTerms tfod_losses(const at::Tensor& rpn_box_encodings, const at::Tensor& rpn_objectness,
                          const at::Tensor& anchors, const TfodBoxClassifierBatch& batch,
                          const std::vector<TfodGroundtruth>& groundtruth, const TfodLossSettings& settings,
                          std::optional<at::Generator> generator = std::nullopt);

}  // namespace mrcnn::model
