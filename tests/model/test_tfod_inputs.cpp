// The TF OD API family's training groundtruth as its input pipeline frames it
// (lib/model/tfod_inputs): TF's legacy nearest-neighbour mask resize against a loop written from
// its kernel, and boxes and masks through each resizer against values worked out by hand.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>

#include "model/tfod_inputs.h"

using namespace mrcnn;
using namespace mrcnn::model;

namespace {

// resize_nearest_neighbor's kernel, one pixel at a time: in = min(floor(out * float(in / out)), in - 1).
at::Tensor nearest_by_loops(const at::Tensor& masks, int64_t height, int64_t width) {
  at::Tensor out = torch::zeros({masks.size(0), height, width}, masks.options());
  const float sy = static_cast<float>(masks.size(1)) / static_cast<float>(height);
  const float sx = static_cast<float>(masks.size(2)) / static_cast<float>(width);
  for (int64_t n = 0; n < masks.size(0); ++n)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const int64_t iy = std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>(y) * sy)), masks.size(1) - 1);
        const int64_t ix = std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>(x) * sx)), masks.size(2) - 1);
        out[n][y][x] = masks[n][iy][ix];
      }
  return out;
}

}  // namespace

TEST_CASE("tf_resize_nearest: TF's legacy nearest neighbour, down and up", "[model][tfod]") {
  torch::manual_seed(3);
  const at::Tensor masks = torch::randint(0, 256, {2, 37, 53}, torch::kUInt8);
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {37, 53}, {100, 81}, {5, 200}})
    CHECK(torch::equal(tf_resize_nearest(masks, h, w), nearest_by_loops(masks, h, w)));
  // 5 rows to 3: floor(0 * 5/3), floor(1 * 5/3), floor(2 * 5/3) = 0, 1, 3 (a half-pixel resize takes 0, 2, 4).
  const at::Tensor rows = torch::arange(5, torch::kFloat).reshape({1, 5, 1});
  CHECK(torch::equal(tf_resize_nearest(rows, 3, 1).flatten(), torch::tensor({0.0f, 1.0f, 3.0f})));
}

TEST_CASE("tfod_frame_groundtruth: fixed_shape stretches, keep_aspect with padding scales and pads", "[model][tfod]") {
  const at::Tensor boxes = torch::tensor({{20.0f, 10.0f, 60.0f, 50.0f}});  // x1 y1 x2 y2 in a 100 x 200 image
  const at::Tensor labels = torch::tensor({2L});
  at::Tensor masks = torch::zeros({1, 100, 200}, torch::kUInt8);
  masks[0].slice(0, 10, 50).slice(1, 20, 60).fill_(1);
  SECTION("fixed_shape_resizer 64 x 64") {
    const auto gt = tfod_frame_groundtruth(boxes, labels, masks, 100, 200, {64, 64}, {64, 64});
    // [y1, x1, y2, x2] x (64 / 100, 64 / 200)
    CHECK(torch::allclose(gt.boxes, torch::tensor({{6.4f, 6.4f, 32.0f, 19.2f}}), 0, 1e-5));
    CHECK(gt.classes.equal(labels));
    CHECK(gt.masks.sizes() == at::IntArrayRef({1, 64, 64}));
    CHECK(gt.masks.scalar_type() == torch::kFloat);
    CHECK(torch::equal(gt.masks, nearest_by_loops(masks, 64, 64).to(torch::kFloat)));
  }
  SECTION("keep_aspect_ratio_resizer to 40 x 80, padded to 80 x 80") {
    const auto gt = tfod_frame_groundtruth(boxes, labels, masks, 100, 200, {40, 80}, {80, 80});
    // The image scaled by 0.4 and placed at the top-left of the padded input: absolute boxes are the
    // resized image's pixels, not stretched to the padding.
    CHECK(torch::allclose(gt.boxes, torch::tensor({{4.0f, 8.0f, 20.0f, 24.0f}}), 0, 1e-5));
    CHECK(gt.masks.sizes() == at::IntArrayRef({1, 80, 80}));
    CHECK(torch::equal(gt.masks.slice(1, 0, 40), nearest_by_loops(masks, 40, 80).to(torch::kFloat)));
    CHECK(gt.masks.slice(1, 40, 80).sum().item<float>() == 0.0f);
    CHECK(gt.masks.sum().item<float>() == 16.0f * 16.0f);  // rows 4..19, columns 8..23
  }
  SECTION("no objects") {
    const auto gt = tfod_frame_groundtruth(torch::zeros({0, 4}), torch::zeros({0}, torch::kLong),
                                           torch::zeros({0, 100, 200}, torch::kUInt8), 100, 200, {64, 64}, {64, 64});
    CHECK(gt.boxes.sizes() == at::IntArrayRef({0, 4}));
    CHECK(gt.masks.sizes() == at::IntArrayRef({0, 64, 64}));
  }
}
