// The CUDA kernel of greedy NMS: IoU bitmasks of 64 boxes per word and the greedy pass over them
// (ops/nms_greedy.h), both on the GPU (see ops/nms.h for the public function; ops/aten/nms_aten.h is the
// device-generic path it is checked against).
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops::cuda {

// boxes (N, 4) x1 y1 x2 y2 and scores (N,) on one CUDA device, float or double. Returns the kept
// indices (int64, on that device) by decreasing score; ties keep the lower index first.
at::Tensor nms_kernel(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

}  // namespace mrcnn::ops::cuda
