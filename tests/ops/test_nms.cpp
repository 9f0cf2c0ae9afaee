// Greedy NMS and per-group (batched) NMS against a brute-force reference written here.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <vector>

#include "ops/boxes.h"
#include "ops/nms.h"
#include "ops/nms_greedy.h"

namespace {

struct Box {
  double x1, y1, x2, y2;
};

std::vector<Box> to_boxes(const torch::Tensor& t) {
  const torch::Tensor d = t.to(torch::kDouble).contiguous();
  std::vector<Box> out;
  for (int64_t i = 0; i < d.size(0); ++i)
    out.push_back({d[i][0].item<double>(), d[i][1].item<double>(), d[i][2].item<double>(), d[i][3].item<double>()});
  return out;
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  const torch::Tensor d = t.to(torch::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

std::vector<int64_t> to_indices(const torch::Tensor& t) {
  REQUIRE(t.scalar_type() == torch::kLong);
  REQUIRE(t.dim() == 1);
  const torch::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

double iou(const Box& a, const Box& b) {
  const double w = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double h = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const double inter = w * h;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

// Greedy NMS, as slow and plain as it gets: visit boxes by score (descending, ties by index),
// keep one unless it overlaps a kept box by more than the threshold.
std::vector<int64_t> reference_nms(const std::vector<Box>& boxes, const std::vector<double>& scores,
                                   double threshold) {
  std::vector<int64_t> order(boxes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  std::vector<int64_t> kept;
  for (const int64_t i : order) {
    bool suppressed = false;
    for (const int64_t k : kept) suppressed = suppressed || iou(boxes[k], boxes[i]) > threshold;
    if (!suppressed) kept.push_back(i);
  }
  return kept;
}

// Per-group greedy NMS, then all kept boxes by score (descending, ties by index).
std::vector<int64_t> reference_batched_nms(const std::vector<Box>& boxes, const std::vector<double>& scores,
                                           const std::vector<int64_t>& groups, double threshold) {
  std::map<int64_t, std::vector<int64_t>> members;
  for (size_t i = 0; i < boxes.size(); ++i) members[groups[i]].push_back(static_cast<int64_t>(i));
  std::vector<int64_t> kept;
  for (const auto& [group, idx] : members) {
    std::vector<Box> b;
    std::vector<double> s;
    for (const int64_t i : idx) {
      b.push_back(boxes[i]);
      s.push_back(scores[i]);
    }
    for (const int64_t local : reference_nms(b, s, threshold)) kept.push_back(idx[local]);
  }
  std::sort(kept.begin(), kept.end());
  std::stable_sort(kept.begin(), kept.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  return kept;
}

// n random boxes with corners in [0, extent) and sides in [1, max_side].
torch::Tensor random_boxes(int64_t n, double extent, double max_side, torch::Dtype dtype) {
  const torch::Tensor xy = torch::rand({n, 2}, torch::kDouble) * extent;
  const torch::Tensor wh = torch::rand({n, 2}, torch::kDouble) * (max_side - 1) + 1;
  return torch::cat({xy, xy + wh}, 1).to(dtype);
}

// Boxes with integer corners, so that every IoU is computed exactly in float and double alike.
torch::Tensor random_integer_boxes(int64_t n, int64_t extent, int64_t max_side, torch::Dtype dtype) {
  const torch::Tensor xy = torch::randint(0, extent, {n, 2}, torch::kLong);
  const torch::Tensor wh = torch::randint(1, max_side + 1, {n, 2}, torch::kLong);
  return torch::cat({xy, xy + wh}, 1).to(dtype);
}

// Scores drawn from a few values only, so that many ties occur.
torch::Tensor tied_scores(int64_t n, int64_t distinct, torch::Dtype dtype) {
  return (torch::randint(0, distinct, {n}, torch::kLong).to(torch::kDouble) / distinct).to(dtype);
}

}  // namespace

TEST_CASE("nms matches brute-force greedy NMS on random boxes", "[ops]") {
  for (const torch::Dtype dtype : {torch::kFloat, torch::kDouble}) {
    for (const int64_t n : {0, 1, 2, 7, 50, 300}) {
      for (const double threshold : {0.3, 0.5, 0.7}) {
        torch::manual_seed(1000 * n + static_cast<int64_t>(threshold * 10));
        const torch::Tensor boxes = random_boxes(n, 50, 40, dtype);
        const torch::Tensor scores = torch::rand({n}, torch::kDouble).to(dtype);
        const auto expected = reference_nms(to_boxes(boxes), to_doubles(scores), threshold);
        const auto got = to_indices(mrcnn::ops::nms(boxes, scores, threshold));
        INFO("dtype " << dtype << ", n " << n << ", threshold " << threshold);
        if (n >= 50) REQUIRE(expected.size() < static_cast<size_t>(n));  // the case does suppress boxes
        CHECK(got == expected);
      }
    }
  }
}

TEST_CASE("nms keeps tied scores in input order", "[ops]") {
  for (const torch::Dtype dtype : {torch::kFloat, torch::kDouble}) {
    for (const int64_t n : {2, 20, 200, 600}) {
      torch::manual_seed(77 + n);
      // Integer corners and thresholds exact in binary: the float kernel must agree exactly.
      const torch::Tensor boxes = random_integer_boxes(n, 60, 25, dtype);
      const torch::Tensor scores = tied_scores(n, 4, dtype);
      for (const double threshold : {0.25, 0.5, 0.75}) {
        const auto expected = reference_nms(to_boxes(boxes), to_doubles(scores), threshold);
        INFO("dtype " << dtype << ", n " << n << ", threshold " << threshold);
        CHECK(to_indices(mrcnn::ops::nms(boxes, scores, threshold)) == expected);
      }
    }
  }
  // All scores equal and no overlaps: the output is exactly the input order.
  const torch::Tensor disjoint = torch::tensor({{0., 0., 1., 1.}, {2., 0., 3., 1.}, {4., 0., 5., 1.}, {6., 0., 7., 1.}});
  CHECK(to_indices(mrcnn::ops::nms(disjoint, torch::full({4}, 0.5), 0.5)) == std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("nms hand-made cases", "[ops]") {
  SECTION("identical boxes: only the best survives") {
    const torch::Tensor boxes = torch::tensor({{1., 1., 5., 5.}, {1., 1., 5., 5.}, {1., 1., 5., 5.}});
    CHECK(to_indices(mrcnn::ops::nms(boxes, torch::tensor({0.2, 0.9, 0.5}), 0.5)) == std::vector<int64_t>{1});
    // IoU 1 is not > 1: a threshold of 1 keeps them all, by score.
    CHECK(to_indices(mrcnn::ops::nms(boxes, torch::tensor({0.2, 0.9, 0.5}), 1.0)) ==
          std::vector<int64_t>{1, 2, 0});
  }
  SECTION("disjoint boxes: all kept, sorted by score") {
    const torch::Tensor boxes = torch::tensor({{0., 0., 10., 10.}, {20., 20., 30., 30.}, {10., 0., 20., 10.}});
    CHECK(to_indices(mrcnn::ops::nms(boxes, torch::tensor({0.1, 0.3, 0.2}), 0.0)) ==
          std::vector<int64_t>{1, 2, 0});
  }
  SECTION("IoU exactly at the threshold is kept, just above it is dropped") {
    // Box 1 is the lower half of box 0: IoU = 50 / 100 = 0.5.
    const torch::Tensor boxes = torch::tensor({{0., 0., 10., 10.}, {0., 0., 10., 5.}});
    const torch::Tensor scores = torch::tensor({0.9, 0.8});
    CHECK(to_indices(mrcnn::ops::nms(boxes, scores, 0.5)) == std::vector<int64_t>{0, 1});
    CHECK(to_indices(mrcnn::ops::nms(boxes, scores, 0.49)) == std::vector<int64_t>{0});
    // IoU = 1/3 in double: equal to the threshold 1.0 / 3 computed the same way, so kept.
    const torch::Tensor thirds = torch::tensor({{0., 0., 2., 1.}, {1., 0., 3., 1.}}, torch::kDouble);
    CHECK(to_indices(mrcnn::ops::nms(thirds, torch::tensor({0.5, 0.6}, torch::kDouble), 1.0 / 3)) ==
          std::vector<int64_t>{1, 0});
    CHECK(to_indices(mrcnn::ops::nms(thirds, torch::tensor({0.5, 0.6}, torch::kDouble), 0.333)) ==
          std::vector<int64_t>{1});
  }
  SECTION("suppression is only by kept boxes (chains)") {
    // 0 suppresses 1; 1 would have suppressed 2, but 1 is gone, and 0 and 2 do not overlap.
    const torch::Tensor boxes = torch::tensor({{0., 0., 10., 10.}, {5., 0., 15., 10.}, {10., 0., 20., 10.}});
    CHECK(to_indices(mrcnn::ops::nms(boxes, torch::tensor({0.9, 0.8, 0.7}), 0.3)) == std::vector<int64_t>{0, 2});
  }
  SECTION("empty input") {
    const torch::Tensor keep = mrcnn::ops::nms(torch::zeros({0, 4}), torch::zeros({0}), 0.5);
    CHECK(keep.numel() == 0);
    CHECK(keep.scalar_type() == torch::kLong);
  }
}

TEST_CASE("batched_nms matches per-group brute force, few boxes (offset branch)", "[ops]") {
  for (const torch::Dtype dtype : {torch::kFloat, torch::kDouble}) {
    for (const int64_t n : {0, 1, 2, 30, 400, 1000}) {  // numel <= 4000
      torch::manual_seed(5 + n);
      const torch::Tensor boxes = random_integer_boxes(n, 80, 30, dtype);
      const torch::Tensor scores = tied_scores(n, 5, dtype);
      const torch::Tensor groups = torch::randint(0, 4, {n}, torch::kLong);
      for (const double threshold : {0.25, 0.5}) {
        const auto expected = reference_batched_nms(to_boxes(boxes), to_doubles(scores),
                                                    to_indices(groups), threshold);
        INFO("dtype " << dtype << ", n " << n << ", threshold " << threshold);
        CHECK(to_indices(mrcnn::ops::batched_nms(boxes, scores, groups, threshold)) == expected);
      }
    }
  }
}

TEST_CASE("batched_nms matches per-group brute force, many boxes (per-group branch)", "[ops]") {
  for (const torch::Dtype dtype : {torch::kFloat, torch::kDouble}) {
    for (const int64_t n : {1001, 1500}) {  // numel > 4000
      for (const bool ties : {false, true}) {
        torch::manual_seed(11 + n + (ties ? 1 : 0));
        const torch::Tensor boxes = random_integer_boxes(n, 150, 40, dtype);
        // Without ties, distinct scores (a permutation) pin the order down completely.
        const torch::Tensor scores =
            ties ? tied_scores(n, 7, dtype) : (torch::randperm(n, torch::kLong).to(torch::kDouble) / n).to(dtype);
        const torch::Tensor groups = torch::randint(0, 6, {n}, torch::kLong);
        const double threshold = 0.5;
        const auto expected =
            reference_batched_nms(to_boxes(boxes), to_doubles(scores), to_indices(groups), threshold);
        auto got = to_indices(mrcnn::ops::batched_nms(boxes, scores, groups, threshold));
        INFO("dtype " << dtype << ", n " << n << ", ties " << ties);
        REQUIRE(expected.size() < static_cast<size_t>(n));  // something was suppressed
        if (!ties) {
          CHECK(got == expected);
        } else {
          // This branch sorts the kept boxes with an unstable sort (as torchvision does): equal
          // scores may come in any order, but the scores must not increase and the set must match.
          const auto s = to_doubles(scores);
          bool non_increasing = true;
          for (size_t i = 1; i < got.size(); ++i) non_increasing = non_increasing && s[got[i - 1]] >= s[got[i]];
          CHECK(non_increasing);
          auto sorted_expected = expected;
          std::sort(got.begin(), got.end());
          std::sort(sorted_expected.begin(), sorted_expected.end());
          CHECK(got == sorted_expected);
        }
      }
    }
  }
}

TEST_CASE("batched_nms: groups never suppress each other", "[ops]") {
  // Two identical boxes in different groups both survive; in the same group only one does.
  const torch::Tensor boxes = torch::tensor({{0., 0., 10., 10.}, {0., 0., 10., 10.}, {1., 1., 10., 10.}});
  const torch::Tensor scores = torch::tensor({0.9, 0.8, 0.7});
  CHECK(to_indices(mrcnn::ops::batched_nms(boxes, scores, torch::tensor({0, 1, 1}), 0.5)) ==
        std::vector<int64_t>{0, 1});
  CHECK(to_indices(mrcnn::ops::batched_nms(boxes, scores, torch::tensor({0, 1, 2}), 0.5)) ==
        std::vector<int64_t>{0, 1, 2});
  CHECK(to_indices(mrcnn::ops::batched_nms(boxes, scores, torch::tensor({3, 3, 3}), 0.5)) ==
        std::vector<int64_t>{0});
  const torch::Tensor empty = mrcnn::ops::batched_nms(torch::zeros({0, 4}), torch::zeros({0}),
                                                      torch::zeros({0}, torch::kLong), 0.5);
  CHECK(empty.numel() == 0);
  CHECK(empty.scalar_type() == torch::kLong);
}

TEST_CASE("the GPU's greedy pass over the suppression bitmask keeps what greedy NMS keeps", "[ops]") {
  for (const int64_t n : {1, 63, 64, 65, 129, 700, 2500}) {
    for (const double threshold : {0.3, 0.7}) {
      for (const int threads : {1, 64, 96, 1024}) {  // 1: the kernel's host fallback
        torch::manual_seed(n * 7 + threads);
        const torch::Tensor boxes = random_boxes(n, 200, 60, torch::kFloat);
        const torch::Tensor scores = torch::rand({n});
        // The mask as the CUDA kernel lays it out: boxes by decreasing score, (n, words) words,
        // bit k of word c of row i set when i suppresses 64c + k > i. (The kernel leaves the words
        // left of the diagonal unset: they stay garbage here, and must never be read.)
        const torch::Tensor order = std::get<1>(scores.sort(/*stable=*/true, 0, /*descending=*/true));
        const torch::Tensor iou = mrcnn::ops::box_iou(boxes.index_select(0, order), boxes.index_select(0, order));
        const auto over = iou.gt(threshold).contiguous();
        const bool* suppresses = over.data_ptr<bool>();
        const int64_t words = (n + 63) / 64;
        std::vector<uint64_t> mask(static_cast<size_t>(n * words), 0xA5A5A5A5A5A5A5A5ULL);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t c = i / 64; c < words; ++c) {
            uint64_t bits = 0;
            for (int64_t k = 0; k < 64 && 64 * c + k < n; ++k)
              if (64 * c + k > i && suppresses[i * n + 64 * c + k]) bits |= 1ULL << k;
            mask[i * words + c] = bits;
          }
        std::vector<int64_t> got;
        // The kernel's steps (ops/nms_greedy.h), a host loop standing in for the block's threads.
        for (const int64_t row : mrcnn::ops::nms_greedy::kept_rows(mask.data(), n, words, threads))
          got.push_back(order[row].item<int64_t>());
        INFO("n " << n << ", threshold " << threshold << ", threads " << threads);
        const auto expected = to_indices(mrcnn::ops::nms(boxes, scores, threshold));
        if (n >= 700) REQUIRE(expected.size() < static_cast<size_t>(n));  // the case does suppress boxes
        CHECK(got == expected);
      }
    }
  }
}
