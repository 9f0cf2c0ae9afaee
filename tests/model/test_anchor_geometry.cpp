// The torch-free anchor geometry (lib/anchors) against the model itself: cell anchors, the grids
// of a real backbone's feature maps, the resize, and the best IoU against brute force over every
// anchor; and the closed-form IoUs the anchor report's tests rely on.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <utility>
#include <vector>

#include "anchors/anchor_geometry.h"
#include "model/anchors.h"
#include "model/backbone.h"
#include "model/transform.h"
#include "ops/boxes.h"

namespace a = mrcnn::anchors;
using mrcnn::model::AnchorGenerator;

namespace {

const torch::TensorOptions kFloat = torch::TensorOptions().dtype(torch::kFloat);

torch::Tensor as_tensor(const std::vector<a::Box>& boxes) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(boxes.size()), 4}, kFloat);
  for (size_t i = 0; i < boxes.size(); ++i)
    for (int k = 0; k < 4; ++k) t[static_cast<int64_t>(i)][k] = boxes[i][k];
  return t;
}

// Every anchor of the plain grids, ordered as AnchorGenerator orders them.
std::vector<a::Box> plain_anchors(const a::AnchorSet& set, a::Size2 padded) {
  std::vector<a::Box> all;
  const std::vector<a::LevelGrid> grids = a::level_grids(padded);
  for (size_t level = 0; level < grids.size(); ++level) {
    const std::vector<a::Box> cell = a::cell_anchors(set.sizes[level], set.aspect_ratios);
    const a::LevelGrid& g = grids[level];
    for (int64_t r = 0; r < g.rows; ++r)
      for (int64_t c = 0; c < g.columns; ++c)
        for (const a::Box& b : cell) {
          const auto x = static_cast<float>(c * g.stride_x), y = static_cast<float>(r * g.stride_y);
          all.push_back({x + b[0], y + b[1], x + b[2], y + b[3]});
        }
  }
  return all;
}

// The model's anchors for a padded size, with feature sizes from a real backbone's forward pass.
torch::Tensor model_anchors(const a::AnchorSet& set, a::Size2 padded) {
  mrcnn::model::BackboneWithFpn backbone("resnet18", mrcnn::model::NormSpec{}, 8);
  backbone->eval();
  torch::NoGradGuard no_grad;
  std::vector<std::pair<int64_t, int64_t>> feature_sizes;
  for (const auto& f : backbone->forward(torch::zeros({1, 3, padded.height, padded.width})))
    feature_sizes.emplace_back(f.size(2), f.size(3));
  return AnchorGenerator(set.sizes, set.aspect_ratios).anchors(padded.height, padded.width, feature_sizes, kFloat);
}

}  // namespace

TEST_CASE("plain cell anchors equal AnchorGenerator's", "[anchors]") {
  const std::vector<a::AnchorSet> sets = {
      {{{32}, {64}, {128}, {256}, {512}}, {0.5, 1.0, 2.0}},
      {{{8}, {16}, {32}, {64}, {128}}, {0.5, 1.0, 2.0}},
      {{{5, 7}, {11, 13}, {21, 27}, {45, 61}, {99, 181}}, {0.33, 0.7, 1.0, 1.414, 3.7}},
      {{{3}, {6}, {9}, {15}, {23}}, {0.25, 0.6, 1.19, 2.83}}};
  for (const auto& set : sets)
    for (size_t level = 0; level < 5; ++level) {
      const AnchorGenerator generator(set.sizes, set.aspect_ratios);
      CHECK(torch::equal(as_tensor(a::cell_anchors(set.sizes[level], set.aspect_ratios)),
                         generator.cell_anchors(level, kFloat)));
      CHECK(set.per_location() == generator.anchors_per_location());
    }
}

TEST_CASE("plain anchor grids equal the model's for padded images of several sizes", "[anchors]") {
  const a::AnchorSet set{{{8}, {16}, {32}, {64}, {128}}, {0.5, 1.0, 2.0}};
  for (const a::Size2 padded : {a::Size2{64, 64}, a::Size2{96, 160}, a::Size2{800, 224}, a::Size2{40, 57}}) {
    CAPTURE(padded.height, padded.width);
    const torch::Tensor expected = model_anchors(set, padded);
    CHECK(torch::equal(as_tensor(plain_anchors(set, padded)), expected));
  }
  // P6 of an 800-pixel side: 13 locations, 800 // 13 = 61 pixels apart.
  CHECK(a::level_grids({800, 800})[4].rows == 13);
  CHECK(a::level_grids({800, 800})[4].stride_y == 61);
}

TEST_CASE("plain resize equals the model's transform", "[anchors]") {
  mrcnn::model::ModelSettings settings;
  for (const int64_t max_size : {1333, 64, 500}) {
    settings.max_size = max_size;
    const mrcnn::model::Transform transform(settings);
    for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{480, 640}, {333, 1000}, {17, 23}, {4000, 3000}})
      for (const int64_t min_size : {64, 480, 800}) {
        const auto expected = transform.resized_size({h, w}, min_size);
        const a::Size2 got = a::resized_size({h, w}, min_size, max_size);
        CHECK(got == a::Size2{expected.first, expected.second});
        const a::Box box{1.5f, 3.25f, 17.75f, 11.0f};
        const torch::Tensor scaled = mrcnn::model::resize_boxes(as_tensor({box}), {h, w}, expected);
        CHECK(torch::equal(as_tensor({a::resize_box(box, {h, w}, got)}), scaled));
      }
  }
}

TEST_CASE("best grid IoU equals the best over every anchor", "[anchors]") {
  const a::AnchorSet set{{{6}, {13}, {30}, {70}, {150}}, {0.5, 1.0, 2.0}};
  const a::Size2 padded{96, 160};
  const torch::Tensor anchors = as_tensor(plain_anchors(set, padded));
  const std::vector<a::LevelGrid> grids = a::level_grids(padded);
  torch::manual_seed(3);
  for (int i = 0; i < 300; ++i) {
    const auto r = torch::rand({4});
    const float x = r[0].item<float>() * 150, y = r[1].item<float>() * 90;
    const float w = 1 + r[2].item<float>() * 120, h = 1 + r[3].item<float>() * 80;
    const a::Box box{x, y, x + w, y + h};
    float best = 0;
    for (size_t level = 0; level < 5; ++level)
      best = std::max(best, a::best_grid_iou(box, a::cell_anchors(set.sizes[level], set.aspect_ratios), grids[level]));
    CAPTURE(x, y, w, h);
    CHECK(best == mrcnn::ops::box_iou(as_tensor({box}), anchors).max().item<float>());
  }
}

TEST_CASE("best grid IoU in closed form", "[anchors]") {
  const a::LevelGrid grid{16, 16, 8, 8};  // P3 of a 128-pixel image
  const std::vector<a::Box> square = a::cell_anchors({16}, {1.0});
  REQUIRE(square.front() == a::Box{-8, -8, 8, 8});
  // A box equal to the anchor at location (row 3, column 5).
  CHECK(a::best_grid_iou({32, 16, 48, 32}, square, grid) == 1.0f);
  // A box of half the anchor's side centred on it: (8 * 8) / (16 * 16).
  CHECK(a::best_grid_iou({36, 20, 44, 28}, square, grid) == 0.25f);
  // Twice the side: (16 * 16) / (32 * 32).
  CHECK(a::best_grid_iou({24, 8, 56, 40}, square, grid) == 0.25f);
  // Half a stride off in x: the nearest columns overlap by 12 of 16 pixels: 12*16 / (2*256 - 192).
  CHECK(a::best_grid_iou({36, 16, 52, 32}, square, grid) == 0.6f);
  // Anchors are not cut to the image: a box at the corner matches the anchor around location 0.
  CHECK(a::best_grid_iou({-8, -8, 8, 8}, square, grid) == 1.0f);
}
