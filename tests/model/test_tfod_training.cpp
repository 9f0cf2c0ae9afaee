// The TF OD API family's training forward pass (lib/model/tfod_training) with its losses on a
// small random model: shapes, the anchors kept, every term finite and positive where the batch
// has positives, gradients reaching the heads and the extractor, and none reaching the RPN's box
// predictor from the second stage (the OD API's stop_gradient on the proposals).
// The numbers against TensorFlow itself: tests/reference/test_tfod_loss_parity.py.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "model/tfod_losses.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_training.h"

using namespace mrcnn;
using namespace mrcnn::model;

namespace {

// A 64x64 input on a 4x4 grid of 16- and 32-pixel square anchors (18 of 32 inside the input);
// every proposal fits the box classifier's batch, so nothing is random.
TfodSettings small_settings() {
  TfodSettings s;
  s.num_classes = 2;
  s.resizer.height = s.resizer.width = 64;
  s.anchors.scales = {0.5f, 1.0f};
  s.anchors.aspect_ratios = {1.0f};
  s.anchors.base_height = s.anchors.base_width = 32.0f;
  s.rpn_depth = 16;
  s.first_stage_max_proposals = 18;
  s.initial_crop_size = 9;
  s.mask_height = s.mask_width = 8;
  s.mask_conv_layers = 2;
  return s;
}

std::vector<TfodGroundtruth> groundtruth() {
  // Each box is one of the 32-pixel anchors, so proposals near it are positives at both stages.
  std::vector<TfodGroundtruth> gt(2);
  gt[0].boxes = torch::tensor({{0.0f, 0.0f, 32.0f, 32.0f}});
  gt[0].classes = torch::tensor({1L});
  gt[1].boxes = torch::tensor({{16.0f, 16.0f, 48.0f, 48.0f}});
  gt[1].classes = torch::tensor({2L});
  for (auto& g : gt) {
    g.masks = torch::zeros({1, 64, 64});
    const auto b = g.boxes[0];
    const int64_t top = b[0].item<int64_t>(), left = b[1].item<int64_t>();
    g.masks[0].slice(0, top + 4, top + 28).slice(1, left, left + 32).fill_(1.0f);  // a band inside the box
  }
  return gt;
}

at::Tensor grad_of(TfodMaskRcnn& net, const std::string& name) {
  const at::Tensor g = net->named_parameters()[name].grad();
  return g.defined() ? g : torch::zeros({1});
}

}  // namespace

TEST_CASE("tfod_training_forward and the losses: every term, gradients, no gradient through the proposals",
          "[model][tfod][losses]") {
  torch::manual_seed(0);
  TfodMaskRcnn net(small_settings());
  for (auto& p : net->parameters()) p.data().normal_(0.0, 0.02);
  net->eval();  // frozen batch norms, as the OD API trains this extractor
  const at::Tensor pixels = torch::rand({2, 3, 64, 64}) * 2 - 1;
  const std::vector<TfodGroundtruth> gt = groundtruth();
  TfodLossSettings settings;
  settings.second_stage_batch_size = 18;
  settings.second_stage_balance_fraction = 1.0;
  const TfodTrainingPredictions p =
      tfod_training_forward(*net, pixels, {{64.0f, 64.0f}, {64.0f, 64.0f}}, gt, settings);
  CHECK(p.anchors.size(0) == 18);
  CHECK(p.rpn_box_encodings.sizes() == at::IntArrayRef({2, 18, 4}));
  CHECK(p.box_classifier.proposals.sizes() == at::IntArrayRef({2, 18, 4}));
  CHECK(p.box_classifier.class_logits.sizes() == at::IntArrayRef({36, 3}));
  CHECK(p.box_classifier.mask_logits.sizes() == at::IntArrayRef({36, 2, 8, 8}));
  CHECK_FALSE(p.box_classifier.proposals.requires_grad());
  const TfodLossTerms t = tfod_losses(p.rpn_box_encodings, p.rpn_objectness, p.anchors,
                                                      p.box_classifier, gt, settings);
  for (const at::Tensor& term :
       {t.rpn_localization, t.rpn_objectness, t.box_localization, t.box_classification, t.mask}) {
    CHECK(std::isfinite(term.item<double>()));
    CHECK(term.item<double>() > 0.0);
  }
  // The second stage: gradients in its heads and the shared extractor, none in the RPN's heads
  // (their outputs reach the box classifier only through the detached proposals).
  (t.box_localization + t.box_classification + t.mask).backward({}, /*retain_graph=*/true);
  for (const char* name : {"box_weight", "class_weight", "mask_last_weight", "mask_conv_0_weight"}) {
    INFO(name);
    CHECK(grad_of(net, name).abs().sum().item<double>() > 0.0);
  }
  for (const char* name : {"rpn_box_weight", "rpn_class_weight", "rpn_conv_weight"})
    CHECK(grad_of(net, name).abs().sum().item<double>() == 0.0);
  const at::Tensor extractor = net->extractor()->parameters().front().grad();
  REQUIRE(extractor.defined());
  CHECK(extractor.abs().sum().item<double>() > 0.0);
  // The first stage: its own heads only.
  net->zero_grad();
  (t.rpn_localization + t.rpn_objectness).backward();
  for (const char* name : {"rpn_box_weight", "rpn_class_weight", "rpn_conv_weight"})
    CHECK(grad_of(net, name).abs().sum().item<double>() > 0.0);
  CHECK(grad_of(net, "box_weight").abs().sum().item<double>() == 0.0);
}
