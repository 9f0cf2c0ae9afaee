// Box area, pairwise IoU, clipping to the image and removal of small boxes, against hand values.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <vector>

#include "ops/boxes.h"

namespace {

std::vector<int64_t> to_indices(const torch::Tensor& t) {
  REQUIRE(t.scalar_type() == torch::kLong);
  const torch::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST_CASE("box_area is width times height, without +1", "[ops]") {
  const torch::Tensor boxes = torch::tensor({{0., 0., 10., 5.}, {2., 3., 4., 9.}, {1.5, 1., 2., 1.25}, {3., 3., 3., 7.}});
  const torch::Tensor area = mrcnn::ops::box_area(boxes);
  REQUIRE(area.sizes() == torch::IntArrayRef({4}));
  CHECK(area[0].item<double>() == 50.0);
  CHECK(area[1].item<double>() == 12.0);
  CHECK(area[2].item<double>() == Approx(0.125));
  CHECK(area[3].item<double>() == 0.0);
}

TEST_CASE("box_iou hand values", "[ops]") {
  const torch::Tensor a = torch::tensor({{0., 0., 2., 2.}, {0., 0., 4., 4.}}, torch::kDouble);
  const torch::Tensor b = torch::tensor({{1., 1., 3., 3.},     // overlaps a[0] by 1 of 7
                                         {0., 0., 2., 2.},     // equal to a[0], inside a[1]
                                         {5., 5., 6., 6.},     // disjoint from both
                                         {2., 0., 6., 2.}},    // touches a[0] along an edge, half inside a[1]
                                        torch::kDouble);
  const torch::Tensor iou = mrcnn::ops::box_iou(a, b);
  REQUIRE(iou.sizes() == torch::IntArrayRef({2, 4}));
  const std::vector<std::vector<double>> expected = {{1.0 / 7, 1.0, 0.0, 0.0}, {4.0 / 16, 4.0 / 16, 0.0, 4.0 / 20}};
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      INFO("pair " << i << ", " << j);
      CHECK(iou[i][j].item<double>() == Approx(expected[i][j]).margin(1e-15));
    }
  // Symmetric: IoU(b, a) is the transpose.
  CHECK(torch::allclose(mrcnn::ops::box_iou(b, a), iou.t()));
}

TEST_CASE("clip_boxes_to_image clamps x to [0, width] and y to [0, height]", "[ops]") {
  // image_size is (height, width) = (80, 100): a swap of the two would show.
  const torch::Tensor boxes = torch::tensor({{-5., -3., 120., 90.},
                                             {10., 20., 30., 40.},
                                             {95., 70., 105., 85.},
                                             {-10., 85., -2., 95.}});
  const torch::Tensor clipped = mrcnn::ops::clip_boxes_to_image(boxes, {80, 100});
  const torch::Tensor expected = torch::tensor({{0., 0., 100., 80.},
                                                {10., 20., 30., 40.},
                                                {95., 70., 100., 80.},
                                                {0., 80., 0., 80.}});
  REQUIRE(clipped.sizes() == boxes.sizes());
  CHECK(torch::equal(clipped, expected));

  // Any leading shape (..., 4) is kept.
  const torch::Tensor batched = boxes.view({2, 2, 4});
  const torch::Tensor clipped3 = mrcnn::ops::clip_boxes_to_image(batched, {80, 100});
  REQUIRE(clipped3.sizes() == batched.sizes());
  CHECK(torch::equal(clipped3, expected.view({2, 2, 4})));
}

TEST_CASE("remove_small_boxes keeps boxes whose both sides are >= min_size", "[ops]") {
  const torch::Tensor boxes = torch::tensor({{0., 0., 10., 10.},   // 10 x 10: kept
                                             {0., 0., 0.5, 10.},   // narrow: dropped
                                             {0., 0., 10., 0.5},   // flat: dropped
                                             {5., 5., 6., 6.},     // exactly 1 x 1: kept (>=)
                                             {3., 3., 3.9, 3.9},   // 0.9 x 0.9: dropped
                                             {2., 2., 1., 5.}});   // negative width: dropped
  CHECK(to_indices(mrcnn::ops::remove_small_boxes(boxes, 1.0)) == std::vector<int64_t>{0, 3});
  CHECK(to_indices(mrcnn::ops::remove_small_boxes(boxes, 0.5)) == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(to_indices(mrcnn::ops::remove_small_boxes(boxes, 10.0)) == std::vector<int64_t>{0});
  CHECK(mrcnn::ops::remove_small_boxes(boxes, 10.5).numel() == 0);
  CHECK(mrcnn::ops::remove_small_boxes(torch::zeros({0, 4}), 1.0).numel() == 0);
}
