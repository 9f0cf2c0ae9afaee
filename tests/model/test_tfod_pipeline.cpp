// A pipeline.config's faster_rcnn block into TfodSettings (lib/config/tf_faster_rcnn, then
// model/tfod_settings' tfod_settings_from_config): the published
// mask_rcnn_inception_resnet_v2_1024x1024 model block read field by field, training-only fields
// passed over, and what would change the forward pass without mrcnn following refused by name.
#include <catch2/catch.hpp>

#include <string>

#include "core/error.h"
#include "io/text_proto.h"
#include "config/config.h"
#include "config/tf_faster_rcnn.h"
#include "model/tfod_settings.h"

using namespace mrcnn;
using namespace mrcnn::model;

namespace {

// The model block of mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config.
const std::string kPublished = R"(model { faster_rcnn {
  number_of_stages: 3 num_classes: 90
  image_resizer { fixed_shape_resizer { height: 1024 width: 1024 } }
  feature_extractor { type: 'faster_rcnn_inception_resnet_v2_keras' }
  first_stage_anchor_generator { grid_anchor_generator {
    scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0] height_stride: 16 width_stride: 16 } }
  first_stage_box_predictor_conv_hyperparams { op: CONV regularizer { l2_regularizer { weight: 0.0 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } } }
  first_stage_nms_score_threshold: 0.0 first_stage_nms_iou_threshold: 0.7 first_stage_max_proposals: 300
  first_stage_localization_loss_weight: 2.0 first_stage_objectness_loss_weight: 1.0
  initial_crop_size: 17 maxpool_kernel_size: 1 maxpool_stride: 1
  second_stage_box_predictor { mask_rcnn_box_predictor {
    use_dropout: false dropout_keep_probability: 1.0
    fc_hyperparams { op: FC regularizer { l2_regularizer { weight: 0.0 } }
      initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } } }
    mask_height: 33 mask_width: 33 mask_prediction_conv_depth: 0 mask_prediction_num_conv_layers: 4
    conv_hyperparams { op: CONV regularizer { l2_regularizer { weight: 0.0 } }
      initializer { truncated_normal_initializer { stddev: 0.01 } } }
    predict_instance_masks: true } }
  second_stage_post_processing {
    batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6 max_detections_per_class: 100
                                max_total_detections: 100 }
    score_converter: SOFTMAX }
  second_stage_localization_loss_weight: 2.0 second_stage_classification_loss_weight: 1.0
  second_stage_mask_prediction_loss_weight: 4.0 resize_masks: false } }
train_config { batch_size: 64 }
)";

TfodSettings read(const std::string& text) {
  return tfod_settings_from_config(config::resolved_tf_faster_rcnn_config(parse_text_proto(text, "p.config"), "p.config"));
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("the published Mask R-CNN Inception-ResNet-v2 model block, every field taken", "[model][tfod]") {
  const TfodSettings s = read(kPublished);
  CHECK(s.number_of_stages == 3);
  CHECK(s.num_classes == 90);
  CHECK(!s.resizer.keep_aspect);
  CHECK(s.resizer.height == 1024);
  CHECK(s.anchors.scales == std::vector<float>{0.25f, 0.5f, 1.0f, 2.0f});
  CHECK(s.anchors.aspect_ratios == std::vector<float>{0.5f, 1.0f, 2.0f});
  CHECK(s.anchors.base_height == 256.0f);  // the proto's default
  CHECK(s.first_stage_iou_threshold == 0.7f);
  CHECK(s.first_stage_max_proposals == 300);
  CHECK(s.initial_crop_size == 17);
  CHECK(s.maxpool_kernel_size == 1);
  CHECK(s.predict_instance_masks);
  CHECK(s.mask_height == 33);
  CHECK(s.mask_conv_depth == 0);
  CHECK(s.mask_conv_layers == 4);
  CHECK(s.second_stage_nms.iou_threshold == 0.6f);
  CHECK(s.second_stage_nms.max_total == 100);
  CHECK(s.score_converter == TfodScoreConverter::kSoftmax);
}

TEST_CASE("keep_aspect_ratio_resizer with padding", "[model][tfod]") {
  const TfodSettings s = read(replaced(kPublished, "fixed_shape_resizer { height: 1024 width: 1024 }",
                                       "keep_aspect_ratio_resizer { min_dimension: 600 max_dimension: 1024 "
                                       "pad_to_max_dimension: true }"));
  CHECK(s.resizer.keep_aspect);
  CHECK(s.resizer.min_dimension == 600);
  CHECK(s.resizer.max_dimension == 1024);
  CHECK(s.resizer.pad_to_max_dimension);
}

TEST_CASE("fields that would change the forward pass are refused, all in one error", "[model][tfod]") {
  std::string text = replaced(kPublished, "faster_rcnn_inception_resnet_v2_keras", "faster_rcnn_resnet50_keras");
  text = replaced(text, "predict_instance_masks: true", "predict_instance_masks: true convolve_then_upsample_masks: true");
  text = replaced(text, "initial_crop_size: 17", "initial_crop_size: 17 use_matmul_crop_and_resize: true");
  text = replaced(text, "conv_hyperparams { op: CONV", "conv_hyperparams { batch_norm { } op: CONV");
  text = replaced(text, "resize_masks: false", "resize_masks: false some_new_field: 3");
  try {
    read(text);
    FAIL("no error");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find("p.config: 5 field(s)") == 0);
    CHECK(message.find("model.faster_rcnn.feature_extractor.type: only faster_rcnn_inception_resnet_v2_keras") !=
          std::string::npos);
    CHECK(message.find("mask_rcnn_box_predictor.convolve_then_upsample_masks: true is not supported") != std::string::npos);
    CHECK(message.find("model.faster_rcnn.use_matmul_crop_and_resize: true") != std::string::npos);
    CHECK(message.find("first_stage_box_predictor_conv_hyperparams.batch_norm: batch norm") != std::string::npos);
    CHECK(message.find("model.faster_rcnn.some_new_field: not supported") != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("a pipeline without a faster_rcnn block is refused", "[model][tfod]") {
  CHECK_THROWS_WITH(read("model { ssd { num_classes: 3 } }"), Catch::Contains("no model { faster_rcnn"));
}

TEST_CASE("the model.tf keys' defaults are the published model's block", "[model][tfod]") {
  const Json imported = config::resolved_tf_faster_rcnn_config(parse_text_proto(kPublished, "p.config"), "p.config");
  const Json defaults = config::resolve(Json{{"model", {{"arch", "tf_faster_rcnn"}}}});
  CHECK(imported["model"]["tf"] == defaults["model"]["tf"]);
  CHECK(imported["model"]["num_classes"] == defaults["model"]["num_classes"]);
}
