// The model's settings as typed values, read from a resolved configuration's "model" section.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::model {

struct RpnSettings {
  int64_t pre_nms_top_n_train = 2000, pre_nms_top_n_test = 1000;
  int64_t post_nms_top_n_train = 2000, post_nms_top_n_test = 1000;
  double nms_thresh = 0.7, fg_iou_thresh = 0.7, bg_iou_thresh = 0.3;
  int64_t batch_size_per_image = 256;
  double positive_fraction = 0.5, score_thresh = 0.0;
};

struct RoiSettings {
  int64_t sampling_ratio = 2;
  bool aligned = false;
  int64_t box_pool_size = 7, representation_size = 1024;
  double fg_iou_thresh = 0.5, bg_iou_thresh = 0.5;
  int64_t batch_size_per_image = 512;
  double positive_fraction = 0.25;
  std::array<double, 4> box_coder_weights{10.0, 10.0, 5.0, 5.0};
  double score_thresh = 0.05, nms_thresh = 0.5;
  int64_t detections_per_img = 100;
};

struct MaskSettings {
  int64_t resolution = 28;  // the head pools at resolution / 2
  int64_t head_channels = 256;
  double bce_weight = 1.0, dice_weight = 1.0, dice_smooth = 1.0;
};

struct ModelSettings {
  std::string backbone = "resnet50";
  int64_t trainable_backbone_layers = 3;
  int64_t num_classes = 91;
  std::vector<int64_t> min_size{800};
  int64_t max_size = 1333;
  int64_t input_channels = 3;  // bands of the input images (model.input_channels)
  std::vector<double> image_mean{0.485, 0.456, 0.406};  // one per input channel
  std::vector<double> image_std{0.229, 0.224, 0.225};
  int64_t size_divisible = 32;
  double frozen_bn_eps = 1e-5;
  bool trainable_bn = false;  // model.backbone_norm = bn
  int64_t fpn_channels = 256;
  std::vector<std::vector<int64_t>> anchor_sizes{{32}, {64}, {128}, {256}, {512}};
  std::vector<double> aspect_ratios{0.5, 1.0, 2.0};
  RpnSettings rpn;
  RoiSettings roi;
  MaskSettings mask;

  // From a resolved configuration (config::resolve); the whole document or its "model" section.
  static ModelSettings from_config(const Json& resolved);
};

}  // namespace mrcnn::model
