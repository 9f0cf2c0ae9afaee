// The TF OD API Faster R-CNN's training targets: IoU matching (ArgMaxMatcher, with the proposal
// and detection stages' thresholds), the targets and weights TargetAssigner gives each anchor or
// proposal, the balanced positive / negative minibatch sampler, and the two training-only steps
// of the forward pass (anchors outside the input dropped, the box classifier's proposals sampled).
// Boxes are absolute [ymin, xmin, ymax, xmax], float32.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>

namespace mrcnn::model {

// ArgMaxMatcher: a column (anchor) matches its best row (groundtruth) when the IoU reaches
// `matched`; below `unmatched` it is a negative, in between ignored (negatives_lower_than_unmatched).
// force_match_for_each_row gives every valid row its best column whatever the IoU.
struct TfodMatcher {
  float matched = 0.5f, unmatched = 0.5f;
  bool force_match_for_each_row = false;
};
// create_target_assigner('FasterRCNN', 'proposal') and ('FasterRCNN', 'detection').
inline constexpr TfodMatcher kTfodProposalMatcher{0.7f, 0.3f, true};
inline constexpr TfodMatcher kTfodDetectionMatcher{0.5f, 0.5f, false};

// Match values besides a groundtruth index.
inline constexpr int64_t kTfodUnmatched = -1, kTfodIgnored = -2;

// box_list_ops.iou: (N, M) for groundtruth (N, 4) against boxes (M, 4); 0 where they do not meet.
at::Tensor tfod_box_iou(const at::Tensor& groundtruth, const at::Tensor& boxes);

// The matcher on an (N, M) IoU matrix: per column the matched row, kTfodUnmatched or kTfodIgnored
// (M, int64). valid_rows (N, bool): which rows may be force-matched. No rows: all unmatched.
at::Tensor tfod_match(const at::Tensor& iou, const at::Tensor& valid_rows, const TfodMatcher& matcher);

// What TargetAssigner.assign gives M boxes: the match, class labels (0 background, else the
// groundtruth's class counted from 1), classification weights (the groundtruth's weight when
// matched, 1 unmatched, 0 ignored), encoded box targets (zeros unless matched) and their weights
// (the groundtruth's weight when matched, else 0).
struct TfodTargets {
  at::Tensor matches, labels, label_weights, box_targets, box_weights;
};

// Targets of `boxes` (M, 4) for groundtruth boxes (N, 4), labels (N, int64, from 1) and weights (N).
TfodTargets tfod_assign_targets(const at::Tensor& boxes, const at::Tensor& gt_boxes, const at::Tensor& gt_labels,
                                const at::Tensor& gt_weights, const TfodMatcher& matcher);

// BalancedPositiveNegativeSampler.subsample: of the candidates (M, bool), at most
// int(positive_fraction * batch_size) positives, then negatives up to batch_size in all. A group
// that fits is taken whole (no randomness); one that does not is shuffled with `generator`.
// Returns the selection (M, bool).
at::Tensor tfod_balanced_sample(const at::Tensor& candidates, const at::Tensor& positives, int64_t batch_size,
                                double positive_fraction, std::optional<at::Generator> generator = std::nullopt);

// Anchors (A, 4) lying wholly inside `window` [ymin, xmin, ymax, xmax] (prune_outside_window):
// what training keeps of the anchors and their predictions (clip_anchors_to_image false). (A, bool)
at::Tensor tfod_inside_window(const at::Tensor& anchors, const std::array<float, 4>& window);

// _sample_box_classifier_minibatch_single_image: targets of the proposals (P, 4; the first
// `valid` real) with the detection matcher, then the balanced sample of those with a non-zero
// classification weight. Returns the chosen rows (int64) in the proposals' order.
at::Tensor tfod_sample_proposals(const at::Tensor& proposals, int64_t valid, const at::Tensor& gt_boxes,
                                 const at::Tensor& gt_labels, const at::Tensor& gt_weights, int64_t batch_size,
                                 double positive_fraction, std::optional<at::Generator> generator = std::nullopt);

}  // namespace mrcnn::model
