// The loss terms of Mask R-CNN training: torchvision's RPN and box losses, and the mask loss the
// users asked for, binary cross-entropy plus Dice on each ROI's own class channel.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::losses {

// Smooth L1 (Huber with a quadratic zone of width beta), summed.
at::Tensor smooth_l1_sum(const at::Tensor& input, const at::Tensor& target, double beta);

// 1 - Dice of sigmoid(logits) against targets, per instance over its pixels, averaged over
// instances: 1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth).
at::Tensor dice_loss(const at::Tensor& logits, const at::Tensor& targets, double smooth);

struct MaskLossWeights {
  double bce = 1.0;
  double dice = 0.0;
  double dice_smooth = 1.0;
};

// logits, targets: (N, M, M). With no instances, 0 that still depends on logits (as torchvision).
at::Tensor mask_loss(const at::Tensor& logits, const at::Tensor& targets, const MaskLossWeights& weights);

// The same summed over the N instances instead of averaged (mask_loss = mask_loss_sum / N), so
// that data-parallel training can divide by the instance count of the whole global batch.
at::Tensor mask_loss_sum(const at::Tensor& logits, const at::Tensor& targets, const MaskLossWeights& weights);

}  // namespace mrcnn::losses
