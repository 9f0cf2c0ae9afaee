#include "train/mixed_precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "core/log.h"

namespace mrcnn::train {
namespace {

// GradScaler's defaults.
constexpr double kGrowthFactor = 2.0, kBackoffFactor = 0.5;
constexpr int64_t kGrowthInterval = 2000;

}  // namespace

MixedPrecision::MixedPrecision(const std::string& mode, const torch::Device& device) {
  if (mode == "off") return;
  if (!device.is_cuda()) {
    log::warn("train.amp = {} applies on CUDA only; training on {} in float32", mode, device.str());
    return;
  }
  enabled_ = true;
  dtype_ = mode == "fp16" ? at::kHalf : at::kBFloat16;
}

MixedPrecision::Scope::Scope(const MixedPrecision& amp) : active_(amp.enabled_) {
  if (!active_) return;
  at::autocast::set_autocast_dtype(at::kCUDA, amp.dtype_);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::increment_nesting();
}

MixedPrecision::Scope::~Scope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(at::kCUDA, false);
}

at::Tensor MixedPrecision::scale(const at::Tensor& loss) const {
  return scales_loss() ? loss * scale_ : loss;
}

bool MixedPrecision::unscale(const std::vector<at::Tensor>& params) {
  if (!scales_loss()) return true;
  torch::NoGradGuard no_grad;
  at::Tensor bad;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    at::Tensor g = p.mutable_grad();
    g.mul_(1.0 / scale_);
    const at::Tensor not_finite = g.isfinite().logical_not().any();
    bad = bad.defined() ? bad.logical_or(not_finite) : not_finite;
  }
  return !(bad.defined() && bad.item<bool>());  // one device sync per step
}

void MixedPrecision::update(bool overflowed) {
  if (!scales_loss()) return;
  if (overflowed) {
    scale_ *= kBackoffFactor;
    clean_steps_ = 0;
    log::debug("fp16 gradients overflowed: step skipped, loss scale now {}", scale_);
  } else if (++clean_steps_ == kGrowthInterval) {
    scale_ *= kGrowthFactor;
    clean_steps_ = 0;
  }
}

void MixedPrecision::restore(double loss_scale, int64_t clean_steps) {
  scale_ = loss_scale;
  clean_steps_ = clean_steps;
}

}  // namespace mrcnn::train
