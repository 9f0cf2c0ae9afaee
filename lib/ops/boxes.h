// Box operations on (N, 4) tensors of (x1, y1, x2, y2) corners, as torchvision.ops defines them.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace mrcnn::ops {

// Width x height of each box (no +1).
at::Tensor box_area(const at::Tensor& boxes);

// (N, M) intersection over union of every pair.
at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2);

// Clamps x to [0, width] and y to [0, height]; image_size is (height, width).
at::Tensor clip_boxes_to_image(const at::Tensor& boxes, std::pair<int64_t, int64_t> image_size);

// Indices of the boxes whose width and height are both >= min_size.
at::Tensor remove_small_boxes(const at::Tensor& boxes, double min_size);

// The same as a mask (bool, one per box), to combine with other filters before one index step:
// each index step reads its count back to the host.
at::Tensor large_enough(const at::Tensor& boxes, double min_size);

}  // namespace mrcnn::ops
