// AnchorGenerator: torchvision's cell anchors, the anchor count, and the order level/location/anchor.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "model/anchors.h"

using mrcnn::model::AnchorGenerator;

namespace {

const torch::TensorOptions kFloat = torch::TensorOptions().dtype(torch::kFloat);

// torchvision's generate_anchors for one size and one ratio, by hand (in float, as it computes).
std::array<float, 4> hand_anchor(float size, float ratio) {
  const float h_ratio = std::sqrt(ratio);
  const float w_ratio = 1.0f / h_ratio;
  const float ws = w_ratio * size, hs = h_ratio * size;
  return {std::nearbyint(-ws / 2), std::nearbyint(-hs / 2), std::nearbyint(ws / 2), std::nearbyint(hs / 2)};
}

}  // namespace

TEST_CASE("cell anchors for size 32, ratios 0.5, 1, 2 are torchvision's", "[model]") {
  const AnchorGenerator generator({{32}}, {0.5, 1.0, 2.0});
  CHECK(generator.anchors_per_location() == 3);
  const torch::Tensor cell = generator.cell_anchors(0, kFloat);
  REQUIRE(cell.sizes() == torch::IntArrayRef({3, 4}));
  // Values torchvision's AnchorGenerator prints for ((32,), (0.5, 1.0, 2.0)).
  const torch::Tensor expected = torch::tensor({{-23.f, -11.f, 23.f, 11.f}, {-16.f, -16.f, 16.f, 16.f},
                                                {-11.f, -23.f, 11.f, 23.f}});
  CHECK(torch::equal(cell, expected));
  // The same from the formula.
  const float ratios[] = {0.5f, 1.0f, 2.0f};
  for (int64_t a = 0; a < 3; ++a) {
    const auto hand = hand_anchor(32, ratios[a]);
    for (int64_t j = 0; j < 4; ++j) CHECK(cell[a][j].item<float>() == hand[j]);
  }
}

TEST_CASE("cell anchors with several sizes per level are ratio-major, then size", "[model]") {
  const AnchorGenerator generator({{32, 64}, {128, 256}}, {0.5, 1.0, 2.0});
  CHECK(generator.anchors_per_location() == 6);
  const float sizes[2][2] = {{32, 64}, {128, 256}};
  const float ratios[] = {0.5f, 1.0f, 2.0f};
  for (size_t level = 0; level < 2; ++level) {
    const torch::Tensor cell = generator.cell_anchors(level, kFloat);
    REQUIRE(cell.sizes() == torch::IntArrayRef({6, 4}));
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t s = 0; s < 2; ++s) {
        const auto hand = hand_anchor(sizes[level][s], ratios[r]);
        INFO("level " << level << ", ratio " << ratios[r] << ", size " << sizes[level][s]);
        for (int64_t j = 0; j < 4; ++j) CHECK(cell[r * 2 + s][j].item<float>() == hand[j]);
      }
  }
  // One hand check that is not from the formula above: ratio 0.5, size 64.
  CHECK(torch::equal(generator.cell_anchors(0, kFloat)[1], torch::tensor({-45.f, -23.f, 45.f, 23.f})));
}

TEST_CASE("anchor count is the sum over levels of H * W * A", "[model]") {
  const AnchorGenerator generator({{32}, {64}, {128}, {256}, {512}}, {0.5, 1.0, 2.0});
  const std::vector<std::pair<int64_t, int64_t>> features = {{200, 304}, {100, 152}, {50, 76}, {25, 38}, {13, 19}};
  const torch::Tensor anchors = generator.anchors(800, 1216, features, kFloat);
  const int64_t expected = 3 * (200 * 304 + 100 * 152 + 50 * 76 + 25 * 38 + 13 * 19);
  CHECK(anchors.sizes() == torch::IntArrayRef({expected, 4}));
  CHECK(anchors.scalar_type() == torch::kFloat);
}

TEST_CASE("anchor positions: level, then location row-major, then anchor", "[model]") {
  // A 64 x 96 batch with feature maps 4 x 4 (strides 16 high, 24 wide) and 3 x 5 (strides 64/3 -> 21
  // and 96/5 -> 19, floor division as torchvision's image_size // grid_size).
  const AnchorGenerator generator({{32}, {64}}, {0.5, 1.0, 2.0});
  const std::vector<std::pair<int64_t, int64_t>> features = {{4, 4}, {3, 5}};
  const torch::Tensor anchors = generator.anchors(64, 96, features, kFloat);
  REQUIRE(anchors.sizes() == torch::IntArrayRef({4 * 4 * 3 + 3 * 5 * 3, 4}));

  const int64_t strides[2][2] = {{16, 24}, {21, 19}};  // (stride_h, stride_w)
  const float sizes[] = {32, 64};
  const float ratios[] = {0.5f, 1.0f, 2.0f};
  int64_t row = 0;
  for (size_t level = 0; level < 2; ++level) {
    const auto [grid_h, grid_w] = features[level];
    for (int64_t y = 0; y < grid_h; ++y)
      for (int64_t x = 0; x < grid_w; ++x)
        for (int64_t a = 0; a < 3; ++a, ++row) {
          const auto cell = hand_anchor(sizes[level], ratios[a]);
          const float sx = static_cast<float>(x * strides[level][1]);
          const float sy = static_cast<float>(y * strides[level][0]);
          const float expected[4] = {cell[0] + sx, cell[1] + sy, cell[2] + sx, cell[3] + sy};
          INFO("level " << level << ", y " << y << ", x " << x << ", anchor " << a << ", row " << row);
          for (int64_t j = 0; j < 4; ++j) CHECK(anchors[row][j].item<float>() == expected[j]);
        }
  }
  CHECK(row == anchors.size(0));
  // Spot checks written out: level 0, location (y=1, x=2), ratio 1 -> centre (48, 16);
  // level 1, location (y=2, x=4), ratio 2 -> centre (76, 42).
  CHECK(torch::equal(anchors[(1 * 4 + 2) * 3 + 1], torch::tensor({32.f, 0.f, 64.f, 32.f})));
  CHECK(torch::equal(anchors[48 + (2 * 5 + 4) * 3 + 2], torch::tensor({76.f - 23, 42.f - 45, 76.f + 23, 42.f + 45})));
}
