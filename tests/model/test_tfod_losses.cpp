// The TF OD API family's training losses (lib/model/tfod_losses) on small hand-made batches whose
// matches are known, against the loss written out in double: the RPN's normalisation by the
// sampled anchors and the batch mean, ignored anchors, an image without groundtruth; the box
// classifier's per-image normalisation, the target class's encoding, padded proposals left out,
// and the mask term against a cropped groundtruth mask; the settings a pipeline.config gives.
// The numbers against TensorFlow itself: tests/reference/test_tfod_loss_parity.py.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <array>
#include <cmath>

#include "config/tf_faster_rcnn.h"
#include "core/error.h"
#include "io/text_proto.h"
#include "model/tfod_losses.h"

using namespace mrcnn::model;

namespace {

double huber(double x) { return std::abs(x) <= 1 ? 0.5 * x * x : std::abs(x) - 0.5; }

// -log softmax(logits)[label], in double.
double cross_entropy(const at::Tensor& logits, int64_t label) {
  const at::Tensor l = logits.to(at::kDouble);
  return (at::logsumexp(l, 0) - l[label]).item<double>();
}

// FasterRcnnBoxCoder.encode in double.
std::array<double, 4> encode(const std::array<double, 4>& box, const std::array<double, 4>& anchor) {
  const double ha = anchor[2] - anchor[0], wa = anchor[3] - anchor[1], h = box[2] - box[0], w = box[3] - box[1];
  return {10.0 * ((box[0] + h / 2) - (anchor[0] + ha / 2)) / ha, 10.0 * ((box[1] + w / 2) - (anchor[1] + wa / 2)) / wa,
          5.0 * std::log(h / ha), 5.0 * std::log(w / wa)};
}

double huber_row(const at::Tensor& prediction, const std::array<double, 4>& target) {
  double sum = 0;
  for (int k = 0; k < 4; ++k) sum += huber(prediction[k].item<double>() - target[k]);
  return sum;
}

}  // namespace

TEST_CASE("tfod_rpn_loss: sampled anchors only, per-image normalisation, batch mean, weights", "[tfod][losses]") {
  torch::manual_seed(3);
  // Anchor 0 is the groundtruth (positive), 1 overlaps it at IoU 0.5 (ignored: between 0.3 and
  // 0.7), 2 and 3 are apart (negatives).
  const at::Tensor anchors = torch::tensor({{10.0f, 10.0f, 50.0f, 50.0f}, {10.0f, 10.0f, 50.0f, 90.0f},
                                            {60.0f, 60.0f, 100.0f, 100.0f}, {0.0f, 60.0f, 40.0f, 100.0f}});
  const at::Tensor encodings = torch::randn({2, 4, 4}), objectness = torch::randn({2, 4, 2});
  std::vector<TfodGroundtruth> gt(2);
  gt[0].boxes = torch::tensor({{10.0f, 10.0f, 50.0f, 50.0f}});
  gt[0].classes = torch::tensor({1L});
  gt[1].boxes = torch::zeros({0, 4});
  gt[1].classes = torch::zeros({0}, torch::kLong);
  TfodLossSettings settings;
  settings.first_stage_localization_weight = 2.0f;
  settings.first_stage_objectness_weight = 0.5f;
  const auto [localization, objectness_loss] = tfod_rpn_loss(encodings, objectness, anchors, gt, settings);
  // Image 0: three sampled anchors (0, 2, 3); its target for anchor 0 is all zeros. Image 1: four
  // negatives, no localization.
  const double loc0 = huber_row(encodings[0][0], {0, 0, 0, 0}) / 3;
  const double obj0 = (cross_entropy(objectness[0][0], 1) + cross_entropy(objectness[0][2], 0) +
                       cross_entropy(objectness[0][3], 0)) / 3;
  double obj1 = 0;
  for (int64_t a = 0; a < 4; ++a) obj1 += cross_entropy(objectness[1][a], 0) / 4;
  CHECK(localization.item<double>() == Approx(2.0 * (loc0 + 0.0) / 2).epsilon(1e-5));
  CHECK(objectness_loss.item<double>() == Approx(0.5 * (obj0 + obj1) / 2).epsilon(1e-5));
}

TEST_CASE("tfod_box_classifier_loss: target-class encodings, padded proposals out, mask term", "[tfod][losses]") {
  torch::manual_seed(5);
  TfodBoxClassifierBatch batch;
  // Proposal 0 matches groundtruth 0 (class 2), proposal 1 is background, proposal 2 padding.
  batch.proposals = torch::tensor({{{12.0f, 10.0f, 50.0f, 32.0f}, {0.0f, 40.0f, 8.0f, 60.0f}, {0.0f, 0.0f, 0.0f, 0.0f}}});
  batch.num_proposals = torch::tensor({2L});
  batch.refined_box_encodings = torch::randn({3, 2, 4});
  batch.class_logits = torch::randn({3, 3});
  batch.mask_logits = torch::randn({3, 2, 4, 4});
  batch.image_shape = {64.0f, 64.0f};
  std::vector<TfodGroundtruth> gt(1);
  gt[0].boxes = torch::tensor({{10.0f, 10.0f, 50.0f, 30.0f}});
  gt[0].classes = torch::tensor({2L});
  gt[0].masks = torch::ones({1, 64, 64});  // crops of it are 1 wherever the box lies in the image
  TfodLossSettings settings;
  settings.second_stage_mask_weight = 4.0f;
  const auto [localization, classification, mask] = tfod_box_classifier_loss(batch, gt, settings);
  const double normalizer = 2.0;  // two real proposals, one image
  const double loc = huber_row(batch.refined_box_encodings[0][1], encode({10, 10, 50, 30}, {12, 10, 50, 32}));
  CHECK(localization.item<double>() == Approx(loc / normalizer).epsilon(1e-5));
  const double cls = cross_entropy(batch.class_logits[0], 2) + cross_entropy(batch.class_logits[1], 0);
  CHECK(classification.item<double>() == Approx(cls / normalizer).epsilon(1e-5));
  // One positive: softplus(-x) over its class-2 mask's 16 pixels, divided by 16.
  const double softplus = at::log1p(at::exp(-batch.mask_logits[0][1].to(at::kDouble))).sum().item<double>();
  CHECK(mask.item<double>() == Approx(4.0 * softplus / 16.0).epsilon(1e-5));
  // Without mask logits there is no mask term.
  batch.mask_logits = at::Tensor();
  CHECK_FALSE(std::get<2>(tfod_box_classifier_loss(batch, gt, settings)).defined());
}

TEST_CASE("tfod_loss_settings_from_config: a pipeline.config's samplers and loss weights, else the proto's",
          "[tfod][losses]") {
  const std::string head = "model { faster_rcnn { num_classes: 3 initial_crop_size: 17 "
                           "feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' } "
                           "first_stage_anchor_generator { grid_anchor_generator { } } "
                           "second_stage_box_predictor { mask_rcnn_box_predictor { } } ";
  auto read = [&](const std::string& fields) {
    const auto pipeline = mrcnn::parse_text_proto(head + fields + " } }", "p.config");
    return tfod_loss_settings_from_config(mrcnn::config::resolved_tf_faster_rcnn_config(pipeline, "p.config"));
  };
  const TfodLossSettings defaults = read("");
  CHECK(defaults.first_stage_minibatch_size == 256);
  CHECK(defaults.first_stage_positive_balance_fraction == Approx(0.5));
  CHECK(defaults.second_stage_batch_size == 64);
  CHECK(defaults.second_stage_balance_fraction == Approx(0.25));
  CHECK(defaults.first_stage_localization_weight == 1.0f);
  CHECK(defaults.second_stage_mask_weight == 1.0f);
  const TfodLossSettings set = read(
      "first_stage_minibatch_size: 512 first_stage_positive_balance_fraction: 0.4 "
      "first_stage_localization_loss_weight: 2.0 first_stage_objectness_loss_weight: 0.5 second_stage_batch_size: 32 "
      "second_stage_balance_fraction: 0.3 second_stage_localization_loss_weight: 3.0 "
      "second_stage_classification_loss_weight: 1.5 second_stage_mask_prediction_loss_weight: 4.0");
  CHECK(set.first_stage_minibatch_size == 512);
  CHECK(set.first_stage_positive_balance_fraction == Approx(0.4));
  CHECK(set.first_stage_localization_weight == 2.0f);
  CHECK(set.first_stage_objectness_weight == 0.5f);
  CHECK(set.second_stage_batch_size == 32);
  CHECK(set.second_stage_balance_fraction == Approx(0.3));
  CHECK(set.second_stage_localization_weight == 3.0f);
  CHECK(set.second_stage_classification_weight == 1.5f);
  CHECK(set.second_stage_mask_weight == 4.0f);
  CHECK_THROWS_WITH(read("first_stage_max_proposals: 50 second_stage_batch_size: 64"),
                    Catch::Contains("model.tf.second_stage.batch_size: 64 is above model.tf.first_stage.max_proposals 50"));
}
