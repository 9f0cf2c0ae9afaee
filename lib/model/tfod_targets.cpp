#include "model/tfod_targets.h"

#include <torch/torch.h>

#include "core/error.h"
#include "model/tfod_ops.h"

namespace mrcnn::model {

at::Tensor tfod_box_iou(const at::Tensor& groundtruth, const at::Tensor& boxes) {
  const auto g = groundtruth.unsqueeze(1).unbind(2), b = boxes.unsqueeze(0).unbind(2);
  const at::Tensor heights = at::clamp_min(at::minimum(g[2], b[2]) - at::maximum(g[0], b[0]), 0.0);
  const at::Tensor widths = at::clamp_min(at::minimum(g[3], b[3]) - at::maximum(g[1], b[1]), 0.0);
  const at::Tensor intersections = heights * widths;
  const at::Tensor unions = tfod_box_area(groundtruth).unsqueeze(1) + tfod_box_area(boxes).unsqueeze(0) - intersections;
  return at::where(intersections == 0, at::zeros_like(intersections), intersections / unions);
}

at::Tensor tfod_match(const at::Tensor& iou, const at::Tensor& valid_rows, const TfodMatcher& matcher) {
  const int64_t columns = iou.size(1);
  const auto long_options = iou.options().dtype(at::kLong);
  if (iou.size(0) == 0) return at::full({columns}, kTfodUnmatched, long_options);
  const auto [best, matches_max] = at::max(iou, 0);  // ties: the first row, as tf.argmax
  at::Tensor matches = matches_max.clone();
  matches.masked_fill_(best < matcher.unmatched, kTfodUnmatched);
  matches.masked_fill_((best >= matcher.unmatched).logical_and(best < matcher.matched), kTfodIgnored);
  if (!matcher.force_match_for_each_row) return matches;
  // Each valid row claims its best column; a column claimed by several rows goes to the first.
  const at::Tensor best_column = std::get<1>(at::max(iou, 1));
  at::Tensor claimed_by = at::full({columns}, iou.size(0), long_options);
  const at::Tensor rows = at::arange(iou.size(0), long_options).masked_fill(valid_rows.logical_not(), iou.size(0));
  claimed_by.scatter_reduce_(0, best_column, rows, "amin");
  const at::Tensor claimed = claimed_by < iou.size(0);
  return at::where(claimed, claimed_by, matches);
}

TfodTargets tfod_assign_targets(const at::Tensor& boxes, const at::Tensor& gt_boxes, const at::Tensor& gt_labels,
                                const at::Tensor& gt_weights, const TfodMatcher& matcher) {
  if (boxes.dim() != 2 || boxes.size(1) != 4 || gt_boxes.dim() != 2 || gt_boxes.size(1) != 4)
    throw Error("TF OD API targets: boxes (M, 4) and groundtruth boxes (N, 4) expected");
  if (gt_labels.size(0) != gt_boxes.size(0) || gt_weights.size(0) != gt_boxes.size(0))
    throw Error("TF OD API targets: " + std::to_string(gt_boxes.size(0)) + " groundtruth boxes but " +
                std::to_string(gt_labels.size(0)) + " labels and " + std::to_string(gt_weights.size(0)) + " weights");
  TfodTargets t;
  t.matches = tfod_match(tfod_box_iou(gt_boxes, boxes), gt_weights > 0, matcher);
  const at::Tensor matched = t.matches >= 0, index = t.matches.clamp_min(0);
  const bool any_gt = gt_boxes.size(0) > 0;
  const at::Tensor zeros = at::zeros({boxes.size(0)}, boxes.options());
  t.labels = any_gt ? at::where(matched, gt_labels.index_select(0, index), at::zeros_like(t.matches))
                    : at::zeros_like(t.matches);
  const at::Tensor weight = any_gt ? gt_weights.index_select(0, index) : zeros;
  t.box_weights = at::where(matched, weight, zeros);
  t.label_weights = at::where(matched, weight, at::where(t.matches == kTfodIgnored, zeros, zeros + 1.0));
  const at::Tensor matched_boxes = any_gt ? gt_boxes.index_select(0, index) : at::zeros_like(boxes);
  t.box_targets = at::where(matched.unsqueeze(1), tfod_encode_boxes(matched_boxes, boxes), at::zeros_like(boxes));
  return t;
}

namespace {

// minibatch_sampler.subsample_indicator: up to `count` of the set entries, at random when more.
at::Tensor subsample(const at::Tensor& indicator, int64_t count, const std::optional<at::Generator>& generator) {
  at::Tensor rows = indicator.nonzero().view({-1});
  if (rows.size(0) > count) {
    const at::Tensor order = at::randperm(rows.size(0), generator, rows.options());
    rows = rows.index_select(0, order.slice(0, 0, count));
  }
  return at::zeros_like(indicator).index_fill_(0, rows, true);
}

}  // namespace

at::Tensor tfod_balanced_sample(const at::Tensor& candidates, const at::Tensor& positives, int64_t batch_size,
                                double positive_fraction, std::optional<at::Generator> generator) {
  const int64_t max_positives = static_cast<int64_t>(positive_fraction * static_cast<double>(batch_size));
  const at::Tensor sampled_positives = subsample(candidates.logical_and(positives), max_positives, generator);
  const int64_t taken = sampled_positives.sum().item<int64_t>();
  const at::Tensor sampled_negatives =
      subsample(candidates.logical_and(positives.logical_not()), batch_size - taken, generator);
  return sampled_positives.logical_or(sampled_negatives);
}

at::Tensor tfod_inside_window(const at::Tensor& anchors, const std::array<float, 4>& window) {
  const auto a = anchors.unbind(1);
  return (a[0] >= window[0]).logical_and(a[1] >= window[1]).logical_and(a[2] <= window[2]).logical_and(a[3] <= window[3]);
}

at::Tensor tfod_sample_proposals(const at::Tensor& proposals, int64_t valid, const at::Tensor& gt_boxes,
                                 const at::Tensor& gt_labels, const at::Tensor& gt_weights, int64_t batch_size,
                                 double positive_fraction, std::optional<at::Generator> generator) {
  const TfodTargets targets = tfod_assign_targets(proposals, gt_boxes, gt_labels, gt_weights, kTfodDetectionMatcher);
  const at::Tensor candidates =
      (at::arange(proposals.size(0), targets.matches.options()) < valid).logical_and(targets.label_weights > 0);
  const at::Tensor chosen =
      tfod_balanced_sample(candidates, targets.labels > 0, batch_size, positive_fraction, std::move(generator));
  return chosen.nonzero().view({-1});
}

}  // namespace mrcnn::model
