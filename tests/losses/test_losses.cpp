// Loss terms against hand-computed values.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>

#include "losses/losses.h"
#include "model/matcher.h"

using mrcnn::losses::MaskLossWeights;

TEST_CASE("smooth L1 is quadratic below beta and linear above", "[losses]") {
  const torch::Tensor input = torch::tensor({0.0, 0.05, 1.0}, torch::kDouble);
  const torch::Tensor target = torch::zeros({3}, torch::kDouble);
  const double beta = 1.0 / 9;
  // 0; 0.5 * 0.05^2 / beta; 1 - 0.5 * beta
  const double expected = 0.5 * 0.05 * 0.05 / beta + (1.0 - 0.5 * beta);
  CHECK(mrcnn::losses::smooth_l1_sum(input, target, beta).item<double>() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("Dice loss by hand", "[losses]") {
  // One instance: p = sigmoid(0) = 0.5 everywhere over 4 pixels, target 1 on 2 of them.
  const torch::Tensor logits = torch::zeros({1, 2, 2}, torch::kDouble);
  const torch::Tensor target = torch::tensor({1.0, 1.0, 0.0, 0.0}, torch::kDouble).view({1, 2, 2});
  // 1 - (2 * 1.0 + 1) / (2.0 + 2.0 + 1) = 1 - 3/5
  CHECK(mrcnn::losses::dice_loss(logits, target, 1.0).item<double>() == Approx(0.4).epsilon(1e-12));
  // A perfect, confident prediction has (almost) no Dice loss.
  const torch::Tensor confident = (target * 2 - 1) * 40;
  CHECK(mrcnn::losses::dice_loss(confident, target, 1.0).item<double>() < 1e-12);
}

TEST_CASE("the mask loss is BCE * w_bce + Dice * w_dice", "[losses]") {
  torch::manual_seed(3);
  const torch::Tensor logits = torch::randn({3, 28, 28}, torch::kDouble);
  const torch::Tensor target = (torch::rand({3, 28, 28}, torch::kDouble) > 0.5).to(torch::kDouble);
  const double bce = torch::binary_cross_entropy_with_logits(logits, target).item<double>();
  const double dice = mrcnn::losses::dice_loss(logits, target, 1.0).item<double>();
  CHECK(mrcnn::losses::mask_loss(logits, target, MaskLossWeights{1.0, 0.0, 1.0}).item<double>() == Approx(bce));
  CHECK(mrcnn::losses::mask_loss(logits, target, MaskLossWeights{0.5, 2.0, 1.0}).item<double>() ==
        Approx(0.5 * bce + 2.0 * dice));
  // No positive ROI: zero, but still connected to the logits (torchvision's logits.sum() * 0).
  const torch::Tensor empty_logits = torch::randn({0, 28, 28}, torch::kDouble).requires_grad_(true);
  const torch::Tensor none = mrcnn::losses::mask_loss(empty_logits, torch::zeros({0, 28, 28}, torch::kDouble), {});
  CHECK(none.item<double>() == 0.0);
  CHECK(none.requires_grad());
}

TEST_CASE("the summed mask loss adds up per instance, so shares of a batch add up to the whole", "[losses]") {
  torch::manual_seed(5);
  const torch::Tensor logits = torch::randn({5, 28, 28}, torch::kDouble);
  const torch::Tensor target = (torch::rand({5, 28, 28}, torch::kDouble) > 0.5).to(torch::kDouble);
  const MaskLossWeights weights{0.7, 1.3, 1.0};
  const double whole = mrcnn::losses::mask_loss_sum(logits, target, weights).item<double>();
  CHECK(whole == Approx(5 * mrcnn::losses::mask_loss(logits, target, weights).item<double>()).epsilon(1e-12));
  // Two processes holding instances 0-1 and 2-4 sum to the same as one holding all five.
  const double shares = mrcnn::losses::mask_loss_sum(logits.narrow(0, 0, 2), target.narrow(0, 0, 2), weights)
                            .item<double>() +
                        mrcnn::losses::mask_loss_sum(logits.narrow(0, 2, 3), target.narrow(0, 2, 3), weights)
                            .item<double>();
  CHECK(shares == Approx(whole).epsilon(1e-12));
}

TEST_CASE("a seeded sampler draws the same samples every time, and other seeds draw others", "[losses]") {
  const torch::Tensor labels = (torch::arange(4000) % 7 == 0).to(torch::kFloat);
  const mrcnn::model::BalancedSampler sampler(64, 0.25);
  const auto [pos_a, neg_a] = sampler(labels, 1234);
  torch::manual_seed(99);  // the shared generator plays no part
  const auto [pos_b, neg_b] = sampler(labels, 1234);
  CHECK(torch::equal(pos_a, pos_b));
  CHECK(torch::equal(neg_a, neg_b));
  CHECK(pos_a.numel() == 16);
  CHECK(neg_a.numel() == 48);
  const auto [pos_c, neg_c] = sampler(labels, 4321);
  CHECK_FALSE(torch::equal(neg_a, neg_c));
}

TEST_CASE("the matcher keeps each ground truth's best prediction when asked", "[losses]") {
  // 2 ground truths x 4 predictions.
  const torch::Tensor iou = torch::tensor({{0.9, 0.2, 0.5, 0.1}, {0.1, 0.35, 0.2, 0.0}}, torch::kFloat);
  const torch::Tensor strict = mrcnn::model::Matcher(0.7, 0.3, false)(iou);
  CHECK(strict[0].item<int64_t>() == 0);
  CHECK(strict[1].item<int64_t>() == mrcnn::model::Matcher::kBetween);  // 0.35
  CHECK(strict[2].item<int64_t>() == mrcnn::model::Matcher::kBetween);  // 0.5
  CHECK(strict[3].item<int64_t>() == mrcnn::model::Matcher::kBelowLow);
  const torch::Tensor lenient = mrcnn::model::Matcher(0.7, 0.3, true)(iou);
  CHECK(lenient[1].item<int64_t>() == 1);  // ground truth 1's best prediction
  const auto [pos, neg] = mrcnn::model::BalancedSampler(4, 0.5, true)(torch::tensor({1, 0, 1, 1, 0, -1}));
  CHECK(pos.numel() == 2);
  CHECK(neg.numel() == 2);
}
