#include "losses/losses.h"

#include <ATen/ATen.h>

namespace mrcnn::losses {

at::Tensor smooth_l1_sum(const at::Tensor& input, const at::Tensor& target, double beta) {
  return at::smooth_l1_loss(input, target, at::Reduction::Sum, beta);
}

namespace {

// 1 - Dice of each instance, (N,).
at::Tensor dice_per_instance(const at::Tensor& logits, const at::Tensor& targets, double smooth) {
  const at::Tensor p = logits.sigmoid().flatten(1);
  const at::Tensor t = targets.flatten(1);
  return 1 - (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth);
}

}  // namespace

at::Tensor dice_loss(const at::Tensor& logits, const at::Tensor& targets, double smooth) {
  return dice_per_instance(logits, targets, smooth).mean();
}

at::Tensor mask_loss(const at::Tensor& logits, const at::Tensor& targets, const MaskLossWeights& weights) {
  if (targets.numel() == 0) return logits.sum() * 0;
  at::Tensor loss = at::zeros({}, logits.options());
  if (weights.bce > 0) loss = loss + weights.bce * at::binary_cross_entropy_with_logits(logits, targets);
  if (weights.dice > 0) loss = loss + weights.dice * dice_loss(logits, targets, weights.dice_smooth);
  return loss;
}

at::Tensor mask_loss_sum(const at::Tensor& logits, const at::Tensor& targets, const MaskLossWeights& weights) {
  if (targets.numel() == 0) return logits.sum() * 0;
  const int64_t instances = targets.size(0);
  const double pixels = static_cast<double>(targets.numel() / instances);
  at::Tensor loss = at::zeros({}, logits.options());
  // BCE: the mean over each instance's pixels, summed over instances.
  if (weights.bce > 0)
    loss = loss + (weights.bce / pixels) *
                      at::binary_cross_entropy_with_logits(logits, targets, {}, {}, at::Reduction::Sum);
  if (weights.dice > 0) loss = loss + weights.dice * dice_per_instance(logits, targets, weights.dice_smooth).sum();
  return loss;
}

}  // namespace mrcnn::losses
