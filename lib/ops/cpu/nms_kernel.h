// The CPU reference kernel of greedy NMS (see ops/nms.h for the public function).
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops::cpu {

at::Tensor nms_kernel(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

}  // namespace mrcnn::ops::cpu
