// Training targets of one image: ground-truth boxes, classes and masks (in the image's own
// pixels as given; the transform rescales them with the image).
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::model {

struct Target {
  at::Tensor boxes;   // (G, 4) float, x1 y1 x2 y2
  at::Tensor labels;  // (G,) int64, 1..num_classes-1
  at::Tensor masks;   // (G, H, W) uint8, 0/1
};

}  // namespace mrcnn::model
