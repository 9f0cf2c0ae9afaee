// What a TF OD API `faster_rcnn { ... }` model block holds, as plain values (no libtorch): the
// resizer, anchors, both stages, the mask head and the post-processing of the TF OD API's Faster /
// Mask R-CNN on the Inception-ResNet-v2 extractor. Defaults are the OD API's proto defaults where
// the published mask_rcnn_inception_resnet_v2 config leaves a field out.
#pragma once

#include <cstdint>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::model {

// image_resizer: fixed_shape_resizer (stretch to height x width) or keep_aspect_ratio_resizer
// (shorter side to min_dimension unless the longer would pass max_dimension; optionally padded
// with zeros at the bottom/right to max_dimension x max_dimension). Bilinear, TF's legacy corners.
struct TfodResizer {
  bool keep_aspect = false;
  int64_t height = 300, width = 300;                  // fixed_shape_resizer
  int64_t min_dimension = 600, max_dimension = 1024;  // keep_aspect_ratio_resizer
  bool pad_to_max_dimension = false;
};

// grid_anchor_generator: scales x base size, aspect ratios (height / width = 1 / ratio), strides
// and offsets in input pixels, in (y, x) order.
struct TfodGridAnchors {
  std::vector<float> scales = {0.25f, 0.5f, 1.0f, 2.0f};
  std::vector<float> aspect_ratios = {0.5f, 1.0f, 2.0f};
  float base_height = 256, base_width = 256;
  float stride_height = 16, stride_width = 16;
  float offset_height = 0, offset_width = 0;
  int64_t per_location() const { return static_cast<int64_t>(scales.size() * aspect_ratios.size()); }
};

// batch_non_max_suppression: per class greedy NMS (IoU > iou_threshold suppresses, scores must
// exceed score_threshold), at most max_per_class each, max_total over all classes.
struct TfodNms {
  float score_threshold = 0.0f, iou_threshold = 0.6f;
  int64_t max_per_class = 100, max_total = 100;
};

enum class TfodScoreConverter { kIdentity, kSigmoid, kSoftmax };

struct TfodSettings {
  int64_t num_classes = 90;
  int number_of_stages = 3;  // 1: proposals, 2: + box classifier, 3: + masks
  TfodResizer resizer;
  TfodGridAnchors anchors;
  // First stage: RPN conv (kernel, depth, dilation; ReLU6), its NMS.
  int64_t rpn_kernel_size = 3, rpn_depth = 512, rpn_atrous_rate = 1;
  float first_stage_score_threshold = 0.0f, first_stage_iou_threshold = 0.7f;
  int64_t first_stage_max_proposals = 300;
  // Crops of the proposals' features, then a max pool (kernel 0: none).
  int64_t initial_crop_size = 17, maxpool_kernel_size = 1, maxpool_stride = 1;
  // mask_rcnn_box_predictor.
  bool share_box_across_classes = false;
  bool predict_instance_masks = true;
  int64_t mask_height = 33, mask_width = 33;
  int64_t mask_conv_layers = 4, mask_conv_depth = 0;  // depth 0: the OD API's automatic depth
  bool masks_are_class_agnostic = false;
  // second_stage_post_processing.
  TfodNms second_stage_nms;
  TfodScoreConverter score_converter = TfodScoreConverter::kSoftmax;
  float logit_scale = 1.0f;
  // The model has a mask head and runs it (detections carry masks): stage 3 of a mask predictor.
  bool predicts_masks() const { return number_of_stages >= 3 && predict_instance_masks; }
};

// The settings of a resolved configuration with model.arch tf_faster_rcnn (model.num_classes
// counts the background; model.tf.* as config/tf_faster_rcnn.h writes them), validated: the
// combinations the model cannot run are refused at load, by the configuration's consistency checks.
TfodSettings tfod_settings_from_config(const Json& resolved);

}  // namespace mrcnn::model
