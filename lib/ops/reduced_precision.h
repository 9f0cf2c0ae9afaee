// bf16/fp16 tensors (autocast's), which NMS and ROIAlign run in float32 as torchvision's autocast
// rules for them do.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops {

inline bool is_reduced_precision(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

}  // namespace mrcnn::ops
