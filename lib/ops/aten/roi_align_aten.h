// ROIAlign written with ATen tensor ops only: runs on any device (the CUDA path until custom
// kernels land), differentiable by autograd, checked against the CPU kernel in the tests.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops::aten {

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                     int64_t output_w, int64_t sampling_ratio, bool aligned);

}  // namespace mrcnn::ops::aten
