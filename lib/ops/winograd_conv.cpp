#include "ops/winograd_conv.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "ops/winograd_f43.h"

namespace mrcnn::ops {

namespace {

// A (rows, cols) float matrix into dst as (cols, rows), in 32x32 tiles on the intra-op threads:
// ATen's strided copy for a memory-format change runs at a fifth of this on large feature maps.
void transpose_matrix(const float* src, float* dst, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  at::parallel_for(0, row_tiles * col_tiles, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = (t / col_tiles) * kTile, c0 = (t % col_tiles) * kTile;
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
    }
  });
}

// A contiguous float (N, C, H, W) tensor in the other memory format: each image's (C, H*W) matrix
// transposed (NCHW to NHWC) or its (H*W, C) matrix (NHWC to NCHW).
at::Tensor change_layout(const at::Tensor& x, at::MemoryFormat to) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  at::Tensor out = at::empty(x.sizes(), x.options().memory_format(to));
  const bool to_channels_last = to == at::MemoryFormat::ChannelsLast;
  for (int64_t i = 0; i < n; ++i)
    transpose_matrix(x.data_ptr<float>() + i * c * hw, out.data_ptr<float>() + i * c * hw, to_channels_last ? c : hw,
                     to_channels_last ? hw : c);
  return out;
}

// x in the given memory format, transposed by change_layout where it is the other one.
at::Tensor in_format(const at::Tensor& x, at::MemoryFormat format) {
  if (x.is_contiguous(format)) return x;
  const at::MemoryFormat other =
      format == at::MemoryFormat::ChannelsLast ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast;
  return x.is_contiguous(other) ? change_layout(x, format) : x.contiguous(format);
}

}  // namespace

at::Tensor winograd_layout(const at::Tensor& x) {
  // change_layout writes through raw pointers, outside autograd: a map that needs a gradient stays
  // as it is (the direct convolution takes it there anyway).
  if (at::GradMode::is_enabled() && x.requires_grad()) return x;
  return x.scalar_type() == at::kFloat && x.dim() == 4 ? in_format(x, at::MemoryFormat::ChannelsLast) : x;
}

bool winograd_applies(const at::Tensor& input, const at::Tensor& weight) {
  const bool needs_grad = at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad());
  // Under CPU autocast the convolution belongs to bf16; this path computes in float32. A weight
  // made in InferenceMode has no version counter, by which the kernel cache sees a changed weight.
  return !needs_grad && input.device().is_cpu() && !at::autocast::is_autocast_enabled(at::kCPU) &&
         input.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat && input.dim() == 4 &&
         weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 && !weight.is_inference() &&
         input.size(1) >= kWinogradMinChannels && input.size(0) * input.size(2) * input.size(3) >= kWinogradMinPixels;
}

at::Tensor conv3x3_same(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias,
                        Activation activation) {
  if (!winograd_applies(input, weight)) {
    at::Tensor out = at::conv2d(input, weight, bias, 1, 1);
    return activation == Activation::kRelu ? out.relu_() : out;
  }
  const at::MemoryFormat format = input.suggest_memory_format();
  const at::Tensor output = winograd_f43_conv3x3(in_format(input, at::MemoryFormat::ChannelsLast), weight, bias,
                                                 activation == Activation::kRelu);
  return in_format(output, format);
}

}  // namespace mrcnn::ops
