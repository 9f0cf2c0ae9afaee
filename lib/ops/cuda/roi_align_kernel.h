// The CUDA kernels of ROIAlign, forward and backward (see ops/roi_align.h for the public function;
// the CPU kernels in ops/cpu/ are the reference they are checked against).
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops::cuda {

// input (N, C, H, W) and rois (K, 5) on one CUDA device, float or double; same arguments and
// result as cpu::roi_align_forward.
at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                             int64_t output_h, int64_t output_w, int64_t sampling_ratio, bool aligned);

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale,
                              int64_t output_h, int64_t output_w, int64_t batch, int64_t channels, int64_t height,
                              int64_t width, int64_t sampling_ratio, bool aligned);

}  // namespace mrcnn::ops::cuda
