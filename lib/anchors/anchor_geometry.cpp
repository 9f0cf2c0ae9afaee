#include "anchors/anchor_geometry.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace mrcnn::anchors {

int64_t AnchorSet::per_location() const {
  return sizes.empty() ? 0 : static_cast<int64_t>(sizes.front().size() * aspect_ratios.size());
}

std::vector<Box> cell_anchors(const std::vector<int64_t>& sizes, const std::vector<double>& aspect_ratios) {
  // torchvision: h_ratios = sqrt(ratios), w_ratios = 1 / h_ratios, ws = w_ratios * scales, all in
  // float32; then (-ws, -hs, ws, hs) / 2, rounded half to even (nearbyint in the default mode).
  std::vector<Box> cell;
  for (const double ratio : aspect_ratios) {
    const float h_ratio = std::sqrt(static_cast<float>(ratio));
    const float w_ratio = 1.0f / h_ratio;
    for (const int64_t size : sizes) {
      const float ws = w_ratio * static_cast<float>(size), hs = h_ratio * static_cast<float>(size);
      cell.push_back(
          {std::nearbyint(-ws / 2), std::nearbyint(-hs / 2), std::nearbyint(ws / 2), std::nearbyint(hs / 2)});
    }
  }
  return cell;
}

std::vector<LevelGrid> level_grids(Size2 padded) {
  const auto half = [](int64_t n) { return (n + 1) / 2; };              // a stride-2 layer: ceil(n / 2)
  int64_t h = half(half(padded.height)), w = half(half(padded.width));  // C2 (P2): conv1, max pool
  std::vector<LevelGrid> grids;
  for (int level = 0; level < 5; ++level) {  // P2-P5, then P6 pooled from P5
    grids.push_back({h, w, padded.height / h, padded.width / w});
    h = half(h), w = half(w);
  }
  return grids;
}

Size2 resized_size(Size2 original, int64_t min_size, int64_t max_size) {
  const auto [h, w] = original;
  const double min_side = static_cast<float>(std::min(h, w));
  const double max_side = static_cast<float>(std::max(h, w));
  const double scale = std::min(static_cast<double>(min_size) / min_side, static_cast<double>(max_size) / max_side);
  const Size2 resized{static_cast<int64_t>(std::floor(static_cast<double>(h) * scale)),
                      static_cast<int64_t>(std::floor(static_cast<double>(w) * scale))};
  if (resized.height < 1 || resized.width < 1)
    throw Error("image of " + std::to_string(w) + "x" + std::to_string(h) +
                " pixels is too elongated for the model: fitting its long side into model.max_size (" +
                std::to_string(max_size) + ") leaves its short side 0 pixels");
  return resized;
}

Box resize_box(const Box& box, Size2 from, Size2 to) {
  const float ratio_h = static_cast<float>(to.height) / static_cast<float>(from.height);
  const float ratio_w = static_cast<float>(to.width) / static_cast<float>(from.width);
  return {box[0] * ratio_w, box[1] * ratio_h, box[2] * ratio_w, box[3] * ratio_h};
}

Size2 padded_size(Size2 resized, int64_t size_divisible) {
  const int64_t d = size_divisible;
  return {(resized.height + d - 1) / d * d, (resized.width + d - 1) / d * d};
}

float box_iou(const Box& a, const Box& b) {
  const float area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const float area_b = (b[2] - b[0]) * (b[3] - b[1]);
  const float w = std::max(0.0f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const float h = std::max(0.0f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const float inter = w * h;
  return inter / (area_a + area_b - inter);
}

namespace {

// The largest overlap of [lo, hi] with [a_lo, a_hi] shifted to the grid lines 0, stride, ...,
// (count - 1) * stride; the lines next to the interval's centre are enough (see best_grid_iou).
float best_axis_overlap(float lo, float hi, float a_lo, float a_hi, int64_t count, int64_t stride) {
  const auto centre_line = static_cast<int64_t>(std::floor((lo + hi) / 2 / static_cast<float>(stride)));
  const int64_t near = std::clamp<int64_t>(centre_line, 0, count - 1);
  float best = 0;
  for (int64_t k = std::max<int64_t>(0, near - 1); k <= std::min(count - 1, near + 2); ++k) {
    const auto shift = static_cast<float>(k * stride);
    best = std::max(best, std::max(0.0f, std::min(hi, shift + a_hi) - std::max(lo, shift + a_lo)));
  }
  return best;
}

}  // namespace

float best_grid_iou(const Box& box, const std::vector<Box>& cell, const LevelGrid& grid) {
  // The intersection is (overlap in x) * (overlap in y), each depending on the column or row
  // only, and the IoU grows with the intersection for a given anchor shape; so the best location
  // takes the best column and the best row, and float rounding keeps that order.
  const float box_area = (box[2] - box[0]) * (box[3] - box[1]);
  float best = 0;
  for (const Box& a : cell) {
    const float w = best_axis_overlap(box[0], box[2], a[0], a[2], grid.columns, grid.stride_x);
    const float h = best_axis_overlap(box[1], box[3], a[1], a[3], grid.rows, grid.stride_y);
    const float inter = w * h;
    const float anchor_area = (a[2] - a[0]) * (a[3] - a[1]);
    best = std::max(best, inter / (box_area + anchor_area - inter));
  }
  return best;
}

}  // namespace mrcnn::anchors
