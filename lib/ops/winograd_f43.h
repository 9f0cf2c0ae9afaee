// 3x3 stride-1 convolutions for inference on the CPU as a Winograd F(4x4, 3x3) of our own:
// channels-last tiles, the 36 products per tile as MKL batched GEMMs, kernel transforms kept per
// weight. A quarter of the direct convolution's multiplications; the model reaches it through
// ops/winograd_conv.h, which decides where it applies (docs/BENCHMARKS.md has the measurements).
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops {

// at::conv2d(input, weight, bias, stride 1, padding 1), then a ReLU if asked, for a CPU float32
// (N, C, H, W) input of any memory format and a (O, C, 3, 3) weight, outside autograd. The result
// is channels-last. Its error is a few times float32 direct convolution's (Lavin & Gray's
// transforms, whose constants up to 8 grow the rounding).
at::Tensor winograd_f43_conv3x3(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                                bool relu = false);

}  // namespace mrcnn::ops
