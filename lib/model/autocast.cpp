#include "model/autocast.h"

#include <ATen/autocast_mode.h>

#include "core/error.h"

namespace mrcnn::model {

std::optional<at::ScalarType> autocast_type(const std::string& precision, c10::DeviceType device) {
  if (precision == "fp32") return std::nullopt;
  if (precision == "bf16") return at::kBFloat16;
  if (precision == "fp16") {
    if (device != c10::DeviceType::CUDA) throw Error("precision fp16 needs a CUDA device (on the CPU use bf16 or fp32)");
    return at::kHalf;
  }
  throw Error("precision '" + precision + "': expected auto, fp32, bf16 or fp16");
}

AutocastScope::AutocastScope(c10::DeviceType type, std::optional<at::ScalarType> dtype)
    : type_(type), active_(dtype.has_value()) {
  if (!active_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, *dtype);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, was_enabled_);
  at::autocast::set_autocast_dtype(type_, previous_dtype_);
}

}  // namespace mrcnn::model
