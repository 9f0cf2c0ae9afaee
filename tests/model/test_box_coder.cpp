// BoxCoder: encode/decode round trip, hand-computed values, and the clamp of dw/dh before exp.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <array>
#include <cmath>

#include "model/box_coder.h"

using mrcnn::model::BoxCoder;

namespace {

// Random (K, 4) boxes with sides in [2, 50].
torch::Tensor random_boxes(int64_t k) {
  const torch::Tensor xy = torch::rand({k, 2}, torch::kDouble) * 100 - 20;
  const torch::Tensor wh = torch::rand({k, 2}, torch::kDouble) * 48 + 2;
  return torch::cat({xy, xy + wh}, 1);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST_CASE("box coder: decode(encode(boxes)) gives the boxes back", "[model]") {
  for (const std::array<double, 4> weights : {std::array<double, 4>{10, 10, 5, 5}, std::array<double, 4>{1, 1, 1, 1}}) {
    torch::manual_seed(static_cast<uint64_t>(weights[0]));
    const BoxCoder coder(weights);
    const torch::Tensor proposals = random_boxes(64);
    const torch::Tensor gt = random_boxes(64);
    const torch::Tensor codes = coder.encode(gt, proposals);
    REQUIRE(codes.sizes() == torch::IntArrayRef({64, 4}));
    const torch::Tensor decoded = coder.decode(codes, proposals);
    REQUIRE(decoded.sizes() == torch::IntArrayRef({64, 1, 4}));
    INFO("weights " << weights[0] << ", " << weights[1] << ", " << weights[2] << ", " << weights[3]);
    CHECK(max_abs_diff(decoded.squeeze(1), gt) < 1e-9);
    // Not an identity: the codes are not the boxes.
    CHECK(max_abs_diff(codes, gt) > 1.0);
  }
}

TEST_CASE("box coder: hand-computed encode and decode", "[model]") {
  // Reference box: width 10, height 20, centre (5, 10). Target: width 20, height 20, centre (6, 6).
  const torch::Tensor reference = torch::tensor({{0., 0., 10., 20.}}, torch::kDouble);
  const torch::Tensor target = torch::tensor({{-4., -4., 16., 16.}}, torch::kDouble);
  const double log2 = std::log(2.0);

  const BoxCoder unit({1, 1, 1, 1});
  const torch::Tensor unit_codes = torch::tensor({{0.1, -0.2, log2, 0.0}}, torch::kDouble);
  CHECK(max_abs_diff(unit.encode(target, reference), unit_codes) < 1e-12);
  CHECK(max_abs_diff(unit.decode(unit_codes, reference), target.view({1, 1, 4})) < 1e-12);

  const BoxCoder weighted({10, 10, 5, 5});
  const torch::Tensor weighted_codes = torch::tensor({{1.0, -2.0, 5 * log2, 0.0}}, torch::kDouble);
  CHECK(max_abs_diff(weighted.encode(target, reference), weighted_codes) < 1e-12);
  CHECK(max_abs_diff(weighted.decode(weighted_codes, reference), target.view({1, 1, 4})) < 1e-12);

  // Several classes per row: (K, 4*C) codes give (K, C, 4) boxes, class c from columns 4c..4c+3.
  const torch::Tensor references = torch::tensor({{0., 0., 10., 20.}, {10., 10., 14., 12.}}, torch::kDouble);
  const torch::Tensor codes = torch::tensor({{0.1, -0.2, log2, 0.0, 0.0, 0.0, 0.0, 0.0},
                                             {0.0, 0.0, 0.0, 0.0, -0.5, 1.0, -log2, log2}},
                                            torch::kDouble);
  const torch::Tensor expected = torch::tensor({{{-4., -4., 16., 16.}, {0., 0., 10., 20.}},
                                                {{10., 10., 14., 12.}, {9., 11., 11., 15.}}},
                                               torch::kDouble);
  const torch::Tensor decoded = unit.decode(codes, references);
  REQUIRE(decoded.sizes() == torch::IntArrayRef({2, 2, 4}));
  CHECK(max_abs_diff(decoded, expected) < 1e-12);
}

TEST_CASE("box coder: dw and dh are clamped at log(1000/16) before exp", "[model]") {
  const torch::Tensor reference = torch::tensor({{0., 0., 16., 16.}}, torch::kDouble);  // centre (8, 8)
  const BoxCoder unit({1, 1, 1, 1});

  // Huge dw: width becomes 16 * 1000/16 = 1000 and no more; huge negative dh is not clamped.
  const torch::Tensor huge = unit.decode(torch::tensor({{0.0, 0.0, 10.0, -10.0}}, torch::kDouble), reference);
  const double tiny_half = 8 * std::exp(-10.0);
  const torch::Tensor expected = torch::tensor({{{8 - 500.0, 8 - tiny_half, 8 + 500.0, 8 + tiny_half}}}, torch::kDouble);
  CHECK(max_abs_diff(huge, expected) < 1e-9);

  // The clamp is on dw / weight: with weight 5, a code of 25 is dw = 5 > 4.135, clamped to width 1000.
  const BoxCoder weighted({10, 10, 5, 5});
  const torch::Tensor clamped = weighted.decode(torch::tensor({{0.0, 0.0, 25.0, 25.0}}, torch::kDouble), reference);
  CHECK(max_abs_diff(clamped, torch::tensor({{{-492., -492., 508., 508.}}}, torch::kDouble)) < 1e-9);

  // Just below the clamp: exp(4.0) * 16, untouched.
  const torch::Tensor below = unit.decode(torch::tensor({{0.0, 0.0, 4.0, 4.0}}, torch::kDouble), reference);
  const double half = 8 * std::exp(4.0);
  CHECK(max_abs_diff(below, torch::tensor({{{8 - half, 8 - half, 8 + half, 8 + half}}}, torch::kDouble)) < 1e-9);
}
