// Training-time assignment: matching anchors or proposals to ground-truth boxes by IoU, and
// sampling a balanced set of positives and negatives (torchvision's Matcher and
// BalancedPositiveNegativeSampler).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mrcnn::model {

// For each prediction (column of the G x P IoU matrix): the index of its ground truth, or
// kBelowLow (-1) / kBetween (-2). With allow_low_quality, every ground truth also keeps the
// predictions it overlaps best, whatever the thresholds.
class Matcher {
 public:
  static constexpr int64_t kBelowLow = -1;
  static constexpr int64_t kBetween = -2;
  Matcher(double high, double low, bool allow_low_quality) : high_(high), low_(low), allow_low_(allow_low_quality) {}
  at::Tensor operator()(const at::Tensor& iou) const;

 private:
  double high_, low_;
  bool allow_low_;
};

// Picks up to batch_size * positive_fraction positives (labels >= 1) and fills the rest with
// negatives (labels == 0). Random by default (torch's generator, so seeds reproduce runs; or a
// generator of its own seeded with `seed` when that is non-zero); `deterministic` takes the
// first ones in index order, for comparisons with other code.
class BalancedSampler {
 public:
  BalancedSampler(int64_t batch_size, double positive_fraction, bool deterministic = false)
      : batch_size_(batch_size), positive_fraction_(positive_fraction), deterministic_(deterministic) {}
  // Returns (positive indices, negative indices) of one image.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& labels, uint64_t seed = 0) const;

 private:
  int64_t batch_size_;
  double positive_fraction_;
  bool deterministic_;
};

}  // namespace mrcnn::model
