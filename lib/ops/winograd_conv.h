// 3x3 stride-1 convolutions for inference on the CPU through NNPACK's Winograd kernels, which do a
// third of oneDNN's direct work on the FPN's and the RPN's large feature maps.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops {

// The same as at::conv2d(input, weight, bias, stride 1, padding 1) for a (O, C, 3, 3) weight, in the
// input's memory format. Winograd F(6x6, 3x3) where it pays: CPU float32 outside autocast, no gradient, NNPACK present
// (x86 with AVX2, ARM with NEON), feature maps of at least kWinogradMinPixels in all (a
// batch of ROIs counts as a whole). Its error is
// a few times float32 direct convolution's (1e-5 of the output's range), far below what a detection
// notices; training keeps the direct convolution.
at::Tensor conv3x3_same(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias);

// Below this many pixels (images x height x width) oneDNN's direct kernel is as fast (measured at
// 256 channels, 2 threads).
constexpr int64_t kWinogradMinPixels = 4096;

// x in the layout the Winograd path computes in (NCHW), so that a chain of layers changes layout once.
at::Tensor winograd_layout(const at::Tensor& x);

// Whether conv3x3_same would take the Winograd path for this input and weight.
bool winograd_applies(const at::Tensor& input, const at::Tensor& weight);

}  // namespace mrcnn::ops
