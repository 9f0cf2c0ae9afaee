// Training targets of one image (ground-truth boxes, classes and masks in the image's own pixels
// as given; the transform rescales them with the image), and the loss terms computed from them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mrcnn::model {

struct Target {
  at::Tensor boxes;   // (G, 4) float, x1 y1 x2 y2
  at::Tensor labels;  // (G,) int64, 1..num_classes-1
  at::Tensor masks;   // (G, H, W) uint8, 0/1
  // Non-zero: this image's random choices in training (multi-scale size, sampled anchors and
  // proposals) come from their own streams seeded with it, not from the shared generators, so
  // they are the same whichever process of a data-parallel run handles the image.
  uint64_t seed = 0;
};

// One training loss as a sum and the number of samples it is averaged over (sampled anchors,
// sampled proposals, positive masks): loss = sum / count. Data-parallel training divides by
// the count of the whole global batch instead, which makes its gradients equal one process's.
struct LossTerm {
  at::Tensor sum;
  double count = 0;
};

// A stream of an image's seed for one purpose (sizes, RPN sampling, ROI sampling).
inline uint64_t derived_seed(uint64_t seed, uint64_t purpose) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace mrcnn::model
