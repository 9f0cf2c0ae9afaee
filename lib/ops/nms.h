// Non-maximum suppression: the greedy kernel and its per-class (batched) form.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops {

// Indices of the boxes kept, in decreasing score order; a box is dropped when its IoU with a
// higher-scoring kept box is > iou_threshold. Ties in score keep their input order.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// NMS within each group (class, or FPN level): boxes of different groups never suppress each other.
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups,
                       double iou_threshold);

}  // namespace mrcnn::ops
