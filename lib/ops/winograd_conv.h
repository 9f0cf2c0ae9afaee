// 3x3 stride-1 convolutions for inference on the CPU as our Winograd F(4x4, 3x3) (ops/winograd_f43.h):
// a quarter of the direct convolution's multiplications on the FPN's and the RPN's large maps and
// the mask head's batch of ROIs.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops {

enum class Activation { kNone, kRelu };

// The same as at::conv2d(input, weight, bias, stride 1, padding 1) for a (O, C, 3, 3) weight, then
// the activation, in the input's memory format. Winograd where it pays: CPU float32 outside
// autocast, no gradient, a weight with a version counter (made outside InferenceMode), at least
// kWinogradMinChannels input channels and kWinogradMinPixels pixels in all (a batch of ROIs counts
// as a whole). Its error is a few times float32 direct convolution's (1e-5 of the output's range),
// far below what a detection notices; training keeps the direct convolution.
at::Tensor conv3x3_same(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                        Activation activation = Activation::kNone);

// Below this many pixels (images x height x width) oneDNN's direct kernel is as fast (measured at
// 256 channels, 2 threads: scripts/bench_conv3x3.sh).
constexpr int64_t kWinogradMinPixels = 1024;
// Below this many input channels the transforms outweigh the saved products: at 128 both measured
// the same, at 64 the direct kernel was 1.7x faster (ResNet-50's layer1, 200x336).
constexpr int64_t kWinogradMinChannels = 256;

// x in the layout the Winograd path computes in (channels-last), so that a chain of layers
// changes layout once; x itself where it needs a gradient (the change is outside autograd).
at::Tensor winograd_layout(const at::Tensor& x);

// Whether conv3x3_same would take the Winograd path for this input and weight.
bool winograd_applies(const at::Tensor& input, const at::Tensor& weight);

}  // namespace mrcnn::ops
