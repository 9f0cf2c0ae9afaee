// The TF OD API's training targets (lib/model/tfod_targets) against brute-force references written
// from the OD API's semantics: IoU, ArgMaxMatcher's thresholds and forced matches, the targets and
// weights of TargetAssigner, the box encoder, the balanced sampler and the anchors kept in training.
// The numbers against TensorFlow itself: tests/reference/test_tfod_loss_parity.py.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "model/tfod_ops.h"
#include "model/tfod_targets.h"

using namespace mrcnn::model;

namespace {

double iou_reference(const float* a, const float* b) {
  const double h = std::max(0.0, static_cast<double>(std::min(a[2], b[2])) - std::max(a[0], b[0]));
  const double w = std::max(0.0, static_cast<double>(std::min(a[3], b[3])) - std::max(a[1], b[1]));
  const double inter = h * w;
  const double area_a = (static_cast<double>(a[2]) - a[0]) * (a[3] - a[1]);
  const double area_b = (static_cast<double>(b[2]) - b[0]) * (b[3] - b[1]);
  return inter == 0 ? 0.0 : inter / (area_a + area_b - inter);
}

at::Tensor random_boxes(int64_t count, uint64_t seed) {
  const at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor corner = at::rand({count, 2}, gen) * 80.0, size = at::rand({count, 2}, gen) * 40.0 + 1.0;
  return at::cat({corner, corner + size}, 1);
}

std::vector<int64_t> values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

}  // namespace

TEST_CASE("tfod_box_iou equals the IoU of each pair, 0 where boxes do not meet", "[tfod][targets]") {
  const at::Tensor gt = random_boxes(7, 1), boxes = random_boxes(50, 2);
  const at::Tensor iou = tfod_box_iou(gt, boxes);
  REQUIRE(iou.sizes() == at::IntArrayRef{7, 50});
  int64_t disjoint = 0;
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 50; ++j) {
      const double expected = iou_reference(gt[i].data_ptr<float>(), boxes[j].data_ptr<float>());
      disjoint += expected == 0;
      CHECK(iou[i][j].item<float>() == Approx(expected).margin(1e-6));
    }
  CHECK(disjoint > 0);
}

TEST_CASE("tfod_match: thresholds, ignored band, and forced matches for each valid row", "[tfod][targets]") {
  // Rows: groundtruth; columns: anchors.
  const at::Tensor iou = torch::tensor({{0.80f, 0.50f, 0.20f, 0.10f, 0.00f, 0.60f},
                                        {0.75f, 0.10f, 0.35f, 0.25f, 0.00f, 0.65f},
                                        {0.00f, 0.00f, 0.00f, 0.28f, 0.05f, 0.00f}});
  const at::Tensor all = torch::ones({3}, torch::kBool);
  CHECK(values(tfod_match(iou, all, kTfodDetectionMatcher)) == std::vector<int64_t>{0, 0, -1, -1, -1, 1});
  // 0.7 / 0.3 without forcing: 0.5, 0.35, 0.6 and 0.65 are ignored.
  const TfodMatcher no_force{0.7f, 0.3f, false};
  CHECK(values(tfod_match(iou, all, no_force)) == std::vector<int64_t>{0, -2, -2, -1, -1, -2});
  // Forcing: row 0's best column is 0 (already its own), row 1's is 0 too (row 0 keeps it, the
  // first), row 2's is 3 (below the thresholds, still matched).
  CHECK(values(tfod_match(iou, all, kTfodProposalMatcher)) == std::vector<int64_t>{0, -2, -2, 2, -1, -2});
  // An invalid row forces nothing.
  const at::Tensor first_two = torch::tensor({true, true, false});
  CHECK(values(tfod_match(iou, first_two, kTfodProposalMatcher)) == std::vector<int64_t>{0, -2, -2, -1, -1, -2});
  CHECK(values(tfod_match(torch::zeros({0, 4}), torch::zeros({0}, torch::kBool), kTfodProposalMatcher)) ==
        std::vector<int64_t>{-1, -1, -1, -1});
}

TEST_CASE("tfod_assign_targets: labels, weights and encoded targets of matched boxes only", "[tfod][targets]") {
  const at::Tensor gt = torch::tensor({{10.0f, 10.0f, 50.0f, 30.0f}, {60.0f, 60.0f, 90.0f, 100.0f}});
  const at::Tensor boxes = torch::tensor({{12.0f, 10.0f, 50.0f, 32.0f},     // gt 0
                                          {58.0f, 62.0f, 90.0f, 100.0f},    // gt 1
                                          {0.0f, 0.0f, 8.0f, 8.0f},         // background
                                          {0.0f, 0.0f, 0.0f, 0.0f}});       // padding
  const TfodTargets t = tfod_assign_targets(boxes, gt, torch::tensor({3L, 1L}), torch::tensor({1.0f, 0.5f}),
                                            kTfodDetectionMatcher);
  CHECK(values(t.matches) == std::vector<int64_t>{0, 1, -1, -1});
  CHECK(values(t.labels) == std::vector<int64_t>{3, 1, 0, 0});
  CHECK(at::equal(t.label_weights, torch::tensor({1.0f, 0.5f, 1.0f, 1.0f})));
  CHECK(at::equal(t.box_weights, torch::tensor({1.0f, 0.5f, 0.0f, 0.0f})));
  CHECK(at::equal(t.box_targets.slice(0, 2), torch::zeros({2, 4})));
  // The targets decode back onto the groundtruth (to float32 rounding).
  const at::Tensor decoded = tfod_decode_boxes(t.box_targets.slice(0, 0, 2), boxes.slice(0, 0, 2));
  CHECK(at::allclose(decoded, gt, 0.0, 1e-4));
  // [ty, tx, th, tw] of the first by hand: box centre (31, 21) and size (38, 22), groundtruth (30, 20), (40, 20).
  const at::Tensor first = t.box_targets[0];
  CHECK(first[0].item<float>() == Approx(10.0 * (30.0 - 31.0) / 38.0).margin(1e-5));
  CHECK(first[1].item<float>() == Approx(10.0 * (20.0 - 21.0) / 22.0).margin(1e-5));
  CHECK(first[2].item<float>() == Approx(5.0 * std::log(40.0 / 38.0)).margin(1e-5));
  CHECK(first[3].item<float>() == Approx(5.0 * std::log(20.0 / 22.0)).margin(1e-5));
}

TEST_CASE("tfod_balanced_sample takes every candidate when they fit, else the configured counts", "[tfod][targets]") {
  const at::Tensor candidates = torch::tensor({true, true, false, true, true, true, false, true, true, true});
  const at::Tensor positives = torch::tensor({true, false, true, true, false, false, true, true, false, false});
  // 3 positive and 5 negative candidates: a batch of 8 at 0.5 takes them all, without a generator.
  CHECK(at::equal(tfod_balanced_sample(candidates, positives, 8, 0.5), candidates));
  // A batch of 4 at 0.25: one positive, three negatives, among the candidates, the same for a seed.
  const at::Generator a = at::make_generator<at::CPUGeneratorImpl>(7), b = at::make_generator<at::CPUGeneratorImpl>(7);
  const at::Tensor chosen = tfod_balanced_sample(candidates, positives, 4, 0.25, a);
  CHECK(chosen.sum().item<int64_t>() == 4);
  CHECK(chosen.logical_and(positives).sum().item<int64_t>() == 1);
  CHECK(chosen.logical_and(candidates.logical_not()).sum().item<int64_t>() == 0);
  CHECK(at::equal(chosen, tfod_balanced_sample(candidates, positives, 4, 0.25, b)));
  // Too few positives: the rest of the batch is negatives.
  CHECK(tfod_balanced_sample(candidates, positives, 6, 1.0).logical_and(positives).sum().item<int64_t>() == 3);
}

TEST_CASE("tfod_inside_window keeps the anchors wholly inside, tfod_sample_proposals the real ones", "[tfod][targets]") {
  const at::Tensor anchors = torch::tensor({{0.0f, 0.0f, 10.0f, 10.0f}, {-1.0f, 0.0f, 10.0f, 10.0f},
                                            {5.0f, 5.0f, 20.0f, 21.0f}, {5.0f, 5.0f, 20.0f, 20.0f}});
  CHECK(values(tfod_inside_window(anchors, {0.0f, 0.0f, 20.0f, 20.0f})) == std::vector<int64_t>{1, 0, 0, 1});
  const at::Tensor gt = torch::tensor({{0.0f, 0.0f, 10.0f, 10.0f}});
  const at::Tensor rows = tfod_sample_proposals(anchors, 3, gt, torch::tensor({2L}), torch::ones({1}), 64, 0.25);
  CHECK(values(rows) == std::vector<int64_t>{0, 1, 2});
}
