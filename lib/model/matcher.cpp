#include "model/matcher.h"

#include <ATen/ATen.h>

#include <optional>

namespace mrcnn::model {

at::Tensor Matcher::operator()(const at::Tensor& iou) const {
  if (iou.size(0) == 0) return at::full({iou.size(1)}, kBelowLow, iou.options().dtype(at::kLong));
  auto [matched_vals, matches] = iou.max(0);
  const at::Tensor all_matches = matches.clone();
  matches.masked_fill_(matched_vals < low_, kBelowLow);
  matches.masked_fill_((matched_vals >= low_).logical_and_(matched_vals < high_), kBetween);
  if (allow_low_) {
    const at::Tensor best_per_gt = std::get<0>(iou.max(1));
    const at::Tensor pairs = at::where(iou == best_per_gt.unsqueeze(1))[1];
    matches.index_put_({pairs}, all_matches.index_select(0, pairs));
  }
  return matches;
}

std::pair<at::Tensor, at::Tensor> BalancedSampler::operator()(const at::Tensor& labels, uint64_t seed) const {
  const at::Tensor positive = at::where(labels >= 1)[0];
  const at::Tensor negative = at::where(labels == 0)[0];
  const int64_t num_pos = std::min<int64_t>(positive.numel(), static_cast<int64_t>(batch_size_ * positive_fraction_));
  const int64_t num_neg = std::min<int64_t>(negative.numel(), batch_size_ - num_pos);
  if (deterministic_) return {positive.narrow(0, 0, num_pos), negative.narrow(0, 0, num_neg)};
  std::optional<at::Generator> generator;
  if (seed != 0) {
    generator = at::globalContext().defaultGenerator(labels.device()).clone();
    generator->set_current_seed(seed);
  }
  const auto options = labels.options().dtype(at::kLong);
  const at::Tensor perm_pos = at::randperm(positive.numel(), generator, options).narrow(0, 0, num_pos);
  const at::Tensor perm_neg = at::randperm(negative.numel(), generator, options).narrow(0, 0, num_neg);
  return {positive.index_select(0, perm_pos), negative.index_select(0, perm_neg)};
}

}  // namespace mrcnn::model
