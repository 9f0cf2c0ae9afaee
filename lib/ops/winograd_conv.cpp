#include "ops/winograd_conv.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

namespace mrcnn::ops {

namespace {

// NNPACK initialises itself on the first availability query, not on the first convolution.
bool nnpack_ready() {
  static const bool ready = at::_nnpack_available();
  return ready;
}

}  // namespace

bool winograd_applies(const at::Tensor& input, const at::Tensor& weight) {
  const bool needs_grad = at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad());
  // Under CPU autocast the convolution belongs to bf16; NNPACK would run it in float32.
  return !needs_grad && input.device().is_cpu() && !at::autocast::is_autocast_enabled(at::kCPU) && input.scalar_type() == at::kFloat &&
         weight.scalar_type() == at::kFloat && input.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 &&
         input.size(0) * input.size(2) * input.size(3) >= kWinogradMinPixels && nnpack_ready();
}

at::Tensor conv3x3_same(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  if (!winograd_applies(input, weight)) return at::conv2d(input, weight, bias, 1, 1);
  const at::MemoryFormat format = input.suggest_memory_format();
  const at::Tensor output = at::_nnpack_spatial_convolution(input.contiguous(), weight.contiguous(), bias,
                                                                 /*padding=*/{1, 1}, /*stride=*/{1, 1});
  return output.contiguous(format);
}

}  // namespace mrcnn::ops
