// Encoding boxes as regression targets relative to reference boxes, and decoding predictions back.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cmath>

namespace mrcnn::model {

class BoxCoder {
 public:
  explicit BoxCoder(std::array<double, 4> weights, double clip = std::log(1000.0 / 16)) : weights_(weights), clip_(clip) {}

  // rel_codes (K, 4*C) against reference boxes (K, 4) → boxes (K, C, 4). dw and dh are clamped
  // at log(1000/16) before exp, as torchvision does.
  at::Tensor decode(const at::Tensor& rel_codes, const at::Tensor& boxes) const;

  // Regression targets (K, 4) of matched ground-truth boxes (K, 4) relative to proposals (K, 4).
  at::Tensor encode(const at::Tensor& matched_boxes, const at::Tensor& proposals) const;

 private:
  std::array<double, 4> weights_;
  double clip_;
};

}  // namespace mrcnn::model
