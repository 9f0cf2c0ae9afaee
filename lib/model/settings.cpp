#include "model/settings.h"

#include "core/error.h"

namespace mrcnn::model {

ModelSettings ModelSettings::from_config(const Json& resolved) {
  const Json& m = resolved.contains("model") ? resolved["model"] : resolved;
  // The TF OD API family has its own settings (tfod_settings_from_config): reading its config as
  // this family's would silently build another model.
  if (m.value("arch", "torchvision") != "torchvision")
    throw Error("model.arch: " + m["arch"].get<std::string>() +
                ": this command runs the torchvision family only; the TF OD API family runs in mrcnn-infer, "
                "mrcnn-eval --config and mrcnn-train");
  ModelSettings s;
  s.backbone = m["backbone"].get<std::string>();
  s.trainable_backbone_layers = m["trainable_backbone_layers"].get<int64_t>();
  s.num_classes = m["num_classes"].get<int64_t>();
  s.min_size = m["min_size"].get<std::vector<int64_t>>();
  s.max_size = m["max_size"].get<int64_t>();
  s.input_channels = m.value("input_channels", int64_t{3});  // absent in configurations before it
  s.image_mean = m["image_mean"].get<std::vector<double>>();
  s.image_std = m["image_std"].get<std::vector<double>>();
  s.size_divisible = m["size_divisible"].get<int64_t>();
  s.frozen_bn_eps = m["frozen_bn_eps"].get<double>();
  s.trainable_bn = m["backbone_norm"] == "bn";
  s.fpn_channels = m["fpn_channels"].get<int64_t>();
  s.anchor_sizes = m["anchor"]["sizes"].get<std::vector<std::vector<int64_t>>>();
  s.aspect_ratios = m["anchor"]["aspect_ratios"].get<std::vector<double>>();

  const Json& rpn = m["rpn"];
  s.rpn.pre_nms_top_n_train = rpn["pre_nms_top_n_train"].get<int64_t>();
  s.rpn.pre_nms_top_n_test = rpn["pre_nms_top_n_test"].get<int64_t>();
  s.rpn.post_nms_top_n_train = rpn["post_nms_top_n_train"].get<int64_t>();
  s.rpn.post_nms_top_n_test = rpn["post_nms_top_n_test"].get<int64_t>();
  s.rpn.nms_thresh = rpn["nms_thresh"].get<double>();
  s.rpn.fg_iou_thresh = rpn["fg_iou_thresh"].get<double>();
  s.rpn.bg_iou_thresh = rpn["bg_iou_thresh"].get<double>();
  s.rpn.batch_size_per_image = rpn["batch_size_per_image"].get<int64_t>();
  s.rpn.positive_fraction = rpn["positive_fraction"].get<double>();
  s.rpn.score_thresh = rpn["score_thresh"].get<double>();

  const Json& roi = m["roi"];
  s.roi.sampling_ratio = roi["sampling_ratio"].get<int64_t>();
  s.roi.aligned = roi["aligned"].get<bool>();
  s.roi.box_pool_size = roi["box_pool_size"].get<int64_t>();
  s.roi.representation_size = roi["representation_size"].get<int64_t>();
  s.roi.fg_iou_thresh = roi["fg_iou_thresh"].get<double>();
  s.roi.bg_iou_thresh = roi["bg_iou_thresh"].get<double>();
  s.roi.batch_size_per_image = roi["batch_size_per_image"].get<int64_t>();
  s.roi.positive_fraction = roi["positive_fraction"].get<double>();
  s.roi.box_coder_weights = roi["box_coder_weights"].get<std::array<double, 4>>();
  s.roi.score_thresh = roi["score_thresh"].get<double>();
  s.roi.nms_thresh = roi["nms_thresh"].get<double>();
  s.roi.detections_per_img = roi["detections_per_img"].get<int64_t>();

  const Json& mask = m["mask"];
  s.mask.resolution = mask["resolution"].get<int64_t>();
  s.mask.head_channels = mask["head_channels"].get<int64_t>();
  s.mask.bce_weight = mask["bce_weight"].get<double>();
  s.mask.dice_weight = mask["dice_weight"].get<double>();
  s.mask.dice_smooth = mask["dice_smooth"].get<double>();
  return s;
}

}  // namespace mrcnn::model
