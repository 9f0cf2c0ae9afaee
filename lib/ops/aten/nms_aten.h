// NMS with the IoU matrix computed by ATen ops on the boxes' device and the greedy pass on the
// host: the device-generic path (CUDA until custom kernels land), checked against the CPU kernel.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops::aten {

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

}  // namespace mrcnn::ops::aten
