// ROI heads' training losses: bf16 proposals (an autocast forward's) are matched and cut in float32.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include "model/roi_heads.h"
#include "model/settings.h"
#include "model/targets.h"

TEST_CASE("ROI heads losses treat bf16 proposals as float32, as torch.cat's promotion does", "[model]") {
  torch::manual_seed(3);
  mrcnn::model::ModelSettings settings;
  settings.num_classes = 3;
  settings.fpn_channels = 8;
  settings.roi.representation_size = 16;
  settings.mask.head_channels = 8;
  mrcnn::model::RoiHeads heads(settings, settings.fpn_channels);
  const mrcnn::model::ImageSize size{128, 160};
  std::vector<at::Tensor> features;
  for (const int64_t stride : {4, 8, 16, 32, 64})
    features.push_back(torch::randn({1, 8, size.first / stride, size.second / stride}));

  // Ground truth at coordinates bf16 cannot hold (steps of 0.5 above 64): rounding it would move
  // the regression targets and the mask targets.
  mrcnn::model::Target target;
  target.boxes = torch::tensor({{10.3f, 12.7f, 70.9f, 90.1f}, {80.2f, 20.6f, 150.3f, 101.7f}});
  target.labels = torch::tensor({1, 2}, torch::kLong);
  target.masks = torch::zeros({2, size.first, size.second}, torch::kUInt8);
  target.masks[0].narrow(0, 13, 77).narrow(1, 11, 60).fill_(1);
  target.masks[1].narrow(0, 21, 80).narrow(1, 81, 69).fill_(1);

  // Proposals around the objects, already rounded to bf16 as an autocast RPN gives them.
  const torch::Tensor jitter = torch::randn({40, 4}) * 6;
  const torch::Tensor proposals_float =
      (target.boxes.repeat({20, 1}) + jitter).clamp(0, 127).to(torch::kBFloat16).to(torch::kFloat);

  const auto losses_with = [&](const torch::Tensor& proposals) {
    torch::NoGradGuard no_grad;
    const auto terms = heads->losses(features, {proposals}, {size}, {target}, /*deterministic_sampling=*/true);
    std::vector<double> values;
    for (const auto& term : terms) values.push_back(term.sum.item<double>());
    return values;
  };
  const std::vector<double> from_float = losses_with(proposals_float);
  const std::vector<double> from_bf16 = losses_with(proposals_float.to(torch::kBFloat16));
  REQUIRE(from_float.size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    INFO("loss term " << k << ": " << from_bf16[k] << " vs " << from_float[k]);
    CHECK(from_float[k] > 0);
    CHECK(from_bf16[k] == from_float[k]);
  }
}
