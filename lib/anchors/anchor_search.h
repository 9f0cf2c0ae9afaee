// The anchors proposed for a training set: sizes per FPN level and aspect ratios that maximise the
// share of boxes whose best anchor IoU reaches the RPN's positive threshold (model.rpn.fg_iou_thresh).
#pragma once

#include <vector>

#include "anchors/box_survey.h"

namespace mrcnn::anchors {

struct SearchOptions {
  Thresholds thresholds;
  size_t max_boxes = 20000;  // more boxes: the search runs on an evenly spaced subsample of this many
  bool keep_count = false;   // only proposals with the current number of anchors per location
  // A proposal with more anchors per location (one more size per level) must cover this much more
  // of the boxes than the best one with the current count: it costs compute and the pretrained
  // RPN predictor layers.
  double min_gain_for_more_anchors = 0.02;
};

struct Proposal {
  AnchorSet anchors;
  bool changed = false;       // false: the current anchors are kept (nothing better was found)
  size_t searched_boxes = 0;  // the boxes the search ran on (all of them, or the subsample)
};

// Sizes per level from log-spaced candidates, increasing with the level (the FPN's shape), each 1
// to 32 times its level's stride: a beam search over every box's best IoU per level and candidate,
// refined one size at a time; alternated with a coordinate search over the aspect ratios, started
// from the current ratios and from k-means of the boxes' log aspect ratios. Deterministic. With
// the current count per location, and (unless keep_count) with one more size per level, taken when
// it gains min_gain_for_more_anchors. The result is checked on every box: it is adopted only when
// it makes more positives than the current anchors.
Proposal propose_anchors(const std::vector<ResizedBox>& boxes, const AnchorSet& current, const SearchOptions& options);

// k-means in one dimension, started at the values' quantiles (deterministic): k sorted centres.
std::vector<double> kmeans_1d(std::vector<double> values, size_t k);

}  // namespace mrcnn::anchors
