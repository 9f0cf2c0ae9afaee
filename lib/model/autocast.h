// The precision of a detection forward pass (mrcnn-infer's Detector, training's validation):
// the autocast type a resolved precision names, and a scope that turns autocast on while alive.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

namespace mrcnn::model {

// fp32: none; bf16, fp16: their types. Throws Error for other names, and for fp16 off CUDA.
std::optional<at::ScalarType> autocast_type(const std::string& precision, c10::DeviceType device);

// Autocast on one device type while alive, as torch.autocast: matrix products and convolutions in
// the reduced type; our ROIAlign and NMS take float32 inputs (poolers.cpp, ops/nms.cpp); the heads'
// outputs (boxes included) may stay in the reduced type, and detect.cpp casts them to float32.
// Leaving the outermost scope drops the cached reduced copies of the weights (training's
// validation: the weights change between runs).
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType type, std::optional<at::ScalarType> dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType type_;
  bool active_;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace mrcnn::model
