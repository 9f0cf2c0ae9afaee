#include "model/tfod_settings.h"

#include <string>

namespace mrcnn::model {

namespace {

TfodResizer read_resizer(const Json& r) {
  TfodResizer out;
  out.keep_aspect = r["type"] == "keep_aspect_ratio";
  out.height = r["height"].get<int64_t>();
  out.width = r["width"].get<int64_t>();
  out.min_dimension = r["min_dimension"].get<int64_t>();
  out.max_dimension = r["max_dimension"].get<int64_t>();
  out.pad_to_max_dimension = r["pad_to_max_dimension"].get<bool>();
  return out;
}

TfodGridAnchors read_anchors(const Json& a) {
  TfodGridAnchors out;
  out.scales = a["scales"].get<std::vector<float>>();
  out.aspect_ratios = a["aspect_ratios"].get<std::vector<float>>();
  out.base_height = a["height"].get<float>();
  out.base_width = a["width"].get<float>();
  out.stride_height = a["height_stride"].get<float>();
  out.stride_width = a["width_stride"].get<float>();
  out.offset_height = a["height_offset"].get<float>();
  out.offset_width = a["width_offset"].get<float>();
  return out;
}

void read_box_predictor(const Json& b, TfodSettings& out) {
  out.share_box_across_classes = b["share_box_across_classes"].get<bool>();
  out.predict_instance_masks = b["predict_instance_masks"].get<bool>();
  out.mask_height = b["mask_height"].get<int64_t>();
  out.mask_width = b["mask_width"].get<int64_t>();
  out.mask_conv_layers = b["mask_conv_layers"].get<int64_t>();
  out.mask_conv_depth = b["mask_conv_depth"].get<int64_t>();
  out.masks_are_class_agnostic = b["masks_are_class_agnostic"].get<bool>();
}

void read_second_stage(const Json& s, TfodSettings& out) {
  out.second_stage_nms.score_threshold = s["score_threshold"].get<float>();
  out.second_stage_nms.iou_threshold = s["iou_threshold"].get<float>();
  out.second_stage_nms.max_per_class = s["max_detections_per_class"].get<int64_t>();
  out.second_stage_nms.max_total = s["max_total_detections"].get<int64_t>();
  const std::string converter = s["score_converter"].get<std::string>();
  out.score_converter = converter == "SOFTMAX"   ? TfodScoreConverter::kSoftmax
                        : converter == "SIGMOID" ? TfodScoreConverter::kSigmoid
                                                 : TfodScoreConverter::kIdentity;
  out.logit_scale = s["logit_scale"].get<float>();
}

}  // namespace

TfodSettings tfod_settings_from_config(const Json& resolved) {
  const Json& m = resolved.contains("model") ? resolved["model"] : resolved;
  const Json& tf = m["tf"];
  TfodSettings s;
  s.num_classes = m["num_classes"].get<int64_t>() - 1;  // TF counts no background
  s.number_of_stages = tf["number_of_stages"].get<int>();
  s.resizer = read_resizer(tf["resizer"]);
  s.anchors = read_anchors(tf["anchors"]);
  const Json& first = tf["first_stage"];
  s.rpn_kernel_size = first["kernel_size"].get<int64_t>();
  s.rpn_depth = first["depth"].get<int64_t>();
  s.rpn_atrous_rate = first["atrous_rate"].get<int64_t>();
  s.first_stage_score_threshold = first["nms_score_threshold"].get<float>();
  s.first_stage_iou_threshold = first["nms_iou_threshold"].get<float>();
  s.first_stage_max_proposals = first["max_proposals"].get<int64_t>();
  s.initial_crop_size = tf["initial_crop_size"].get<int64_t>();
  s.maxpool_kernel_size = tf["maxpool_kernel_size"].get<int64_t>();
  s.maxpool_stride = tf["maxpool_stride"].get<int64_t>();
  read_box_predictor(tf["box_predictor"], s);
  read_second_stage(tf["second_stage"], s);
  return s;
}

}  // namespace mrcnn::model
