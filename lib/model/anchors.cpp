#include "model/anchors.h"

#include <ATen/ATen.h>

namespace mrcnn::model {

AnchorGenerator::AnchorGenerator(std::vector<std::vector<int64_t>> sizes, std::vector<double> aspect_ratios)
    : sizes_(std::move(sizes)), aspect_ratios_(std::move(aspect_ratios)) {}

int64_t AnchorGenerator::anchors_per_location() const {
  return static_cast<int64_t>(sizes_.at(0).size() * aspect_ratios_.size());
}

at::Tensor AnchorGenerator::cell_anchors(size_t level, const at::TensorOptions& options) const {
  const at::TensorOptions f32 = options.dtype(at::kFloat);
  const at::Tensor scales = at::tensor(sizes_.at(level), at::TensorOptions().dtype(at::kLong)).to(f32);
  const at::Tensor ratios = at::tensor(aspect_ratios_, at::TensorOptions().dtype(at::kDouble)).to(f32);
  const at::Tensor h_ratios = at::sqrt(ratios);
  const at::Tensor w_ratios = 1 / h_ratios;
  const at::Tensor ws = (w_ratios.unsqueeze(1) * scales.unsqueeze(0)).reshape(-1);
  const at::Tensor hs = (h_ratios.unsqueeze(1) * scales.unsqueeze(0)).reshape(-1);
  return (at::stack({-ws, -hs, ws, hs}, 1) / 2).round().to(options.dtype());
}

at::Tensor AnchorGenerator::anchors(int64_t batch_h, int64_t batch_w,
                                    const std::vector<std::pair<int64_t, int64_t>>& feature_sizes,
                                    const at::TensorOptions& options) const {
  std::vector<at::Tensor> per_level;
  for (size_t level = 0; level < feature_sizes.size(); ++level) {
    const auto [grid_h, grid_w] = feature_sizes[level];
    const int64_t stride_h = batch_h / grid_h;
    const int64_t stride_w = batch_w / grid_w;
    const at::TensorOptions i64 = options.dtype(at::kLong);
    const at::Tensor shifts_x = at::arange(0, grid_w, i64) * stride_w;
    const at::Tensor shifts_y = at::arange(0, grid_h, i64) * stride_h;
    const auto grid = at::meshgrid({shifts_y, shifts_x}, "ij");
    const at::Tensor shift_x = grid[1].reshape(-1);
    const at::Tensor shift_y = grid[0].reshape(-1);
    const at::Tensor shifts = at::stack({shift_x, shift_y, shift_x, shift_y}, 1);
    const at::Tensor base = cell_anchors(level, options);
    per_level.push_back((shifts.view({-1, 1, 4}) + base.view({1, -1, 4})).reshape({-1, 4}));
  }
  return at::cat(per_level, 0);
}

}  // namespace mrcnn::model
