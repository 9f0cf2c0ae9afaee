#include "config/tf_faster_rcnn.h"

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "io/text_proto.h"

namespace mrcnn::config {

namespace {

// One message of the text-proto tree (fields -> arrays of values), read field by field. Problems
// (wrong types, unsupported values, fields nobody read) are collected with their full paths.
class Message {
 public:
  Message(const Json* json, std::string path, std::vector<std::string>* problems)
      : json_(json), path_(std::move(path)), problems_(problems) {}

  bool has(const std::string& field) const { return json_ && json_->is_object() && json_->contains(field); }
  // The field's values (a repeated field or a list), marked as read; empty when absent.
  Json values(const std::string& field) {
    read_.insert(field);
    return has(field) && json_->at(field).is_array() ? json_->at(field) : Json::array();
  }
  Message child(const std::string& field) {
    const Json v = values(field);
    children_.push_back(std::make_unique<Json>(v.empty() ? Json::object() : v.back()));
    if (!children_.back()->is_object()) problem(field, "expected a message { ... }");
    return Message(children_.back().get(), path_ + field + ".", problems_);
  }
  template <typename T>
  T get(const std::string& field, T fallback, const char* expected) {
    const Json v = values(field);
    if (v.empty()) return fallback;
    try {
      return v.back().get<T>();
    } catch (const std::exception&) {
      problem(field, std::string("expected ") + expected + ", found " + v.back().dump());
      return fallback;
    }
  }
  double number(const std::string& field, double fallback) { return get<double>(field, fallback, "a number"); }
  int64_t integer(const std::string& field, int64_t fallback) { return get<int64_t>(field, fallback, "an integer"); }
  bool boolean(const std::string& field, bool fallback) { return get<bool>(field, fallback, "true or false"); }
  std::string name(const std::string& field, const std::string& fallback) {
    return get<std::string>(field, fallback, "a name");
  }
  std::vector<double> numbers(const std::string& field) {
    std::vector<double> out;
    for (const auto& v : values(field)) out.push_back(v.is_number() ? v.get<double>() : 0.0);
    return out;
  }
  void ignore(std::initializer_list<const char*> fields) {
    for (const char* f : fields) read_.insert(f);
  }
  void problem(const std::string& field, const std::string& what) { problems_->push_back(path_ + field + ": " + what); }
  // A boolean that mrcnn supports only at one value.
  void require(const std::string& field, bool supported, const std::string& why) {
    if (boolean(field, supported) != supported) problem(field, std::string(supported ? "false" : "true") + " " + why);
  }
  // Every field present but not read: not supported.
  void finish() {
    if (!json_ || !json_->is_object()) return;
    for (const auto& item : json_->items())
      if (!read_.count(item.key())) problem(item.key(), "not supported by mrcnn's TF OD API model");
  }

 private:
  const Json* json_;
  std::string path_;
  std::vector<std::string>* problems_;
  std::set<std::string> read_;
  std::vector<std::unique_ptr<Json>> children_;
};

// Hyperparams of the heads' layers: initialisers and regularisers only train; batch norm would
// change the forward pass, and so would another activation than `activation` where the layers
// apply one (empty: the layers take none from here).
void read_hyperparams(Message&& hyperparams, const std::string& activation) {
  hyperparams.ignore({"op", "regularizer", "initializer"});
  if (hyperparams.has("batch_norm") || hyperparams.has("sync_batch_norm"))
    hyperparams.problem("batch_norm", "batch norm in the heads is not supported yet");
  hyperparams.ignore({"batch_norm", "sync_batch_norm"});
  const std::string given = hyperparams.name("activation", "RELU");
  if (!activation.empty() && given != activation)
    hyperparams.problem("activation", "only " + activation + " is supported here");
  hyperparams.finish();
}

void read_resizer(Message&& resizer, Json& out) {
  for (const char* kind : {"fixed_shape_resizer", "keep_aspect_ratio_resizer"}) {
    if (!resizer.has(kind)) continue;
    Message r = resizer.child(kind);
    const bool keep_aspect = std::string(kind) == "keep_aspect_ratio_resizer";
    out["type"] = keep_aspect ? "keep_aspect_ratio" : "fixed_shape";
    if (keep_aspect) {
      out["min_dimension"] = r.integer("min_dimension", 600);
      out["max_dimension"] = r.integer("max_dimension", 1024);
      out["pad_to_max_dimension"] = r.boolean("pad_to_max_dimension", false);
      for (const auto& v : r.values("per_channel_pad_value"))
        if (!v.is_number() || v.get<double>() != 0.0) r.problem("per_channel_pad_value", "only 0 is supported");
    } else {
      out["height"] = r.integer("height", 300);
      out["width"] = r.integer("width", 300);
    }
    if (r.name("resize_method", "BILINEAR") != "BILINEAR") r.problem("resize_method", "only BILINEAR is supported");
    r.require("convert_to_grayscale", false, "is not supported");
    r.finish();
  }
  if (!out.contains("type")) out = {{"type", "fixed_shape"}, {"height", 300}, {"width", 300}};  // TfodResizer's
  resizer.finish();
}

void read_anchors(Message&& generator, Json& out) {
  Message grid = generator.child("grid_anchor_generator");
  if (!generator.has("grid_anchor_generator")) generator.problem("grid_anchor_generator", "required (the only one supported)");
  generator.finish();
  out["scales"] = grid.has("scales") ? grid.numbers("scales") : std::vector<double>{0.25, 0.5, 1.0, 2.0};
  out["aspect_ratios"] = grid.has("aspect_ratios") ? grid.numbers("aspect_ratios") : std::vector<double>{0.5, 1.0, 2.0};
  out["height"] = grid.number("height", 256);
  out["width"] = grid.number("width", 256);
  out["height_stride"] = grid.number("height_stride", 16);
  out["width_stride"] = grid.number("width_stride", 16);
  out["height_offset"] = grid.number("height_offset", 0);
  out["width_offset"] = grid.number("width_offset", 0);
  if (out["scales"].empty() || out["aspect_ratios"].empty()) grid.problem("scales", "scales and aspect_ratios are required");
  grid.finish();
}

void read_box_predictor(Message&& predictor, Json& out) {
  Message box = predictor.child("mask_rcnn_box_predictor");
  if (!predictor.has("mask_rcnn_box_predictor")) predictor.problem("mask_rcnn_box_predictor", "required");
  predictor.finish();
  read_hyperparams(box.child("fc_hyperparams"), "");
  read_hyperparams(box.child("conv_hyperparams"), "RELU");
  box.ignore({"use_dropout", "dropout_keep_probability"});  // dropout only trains
  if (box.integer("box_code_size", 4) != 4) box.problem("box_code_size", "must be 4");
  out["predict_instance_masks"] = box.boolean("predict_instance_masks", false);
  out["mask_height"] = box.integer("mask_height", 15);
  out["mask_width"] = box.integer("mask_width", 15);
  out["mask_conv_depth"] = box.integer("mask_prediction_conv_depth", 256);
  out["mask_conv_layers"] = box.integer("mask_prediction_num_conv_layers", 2);
  out["masks_are_class_agnostic"] = box.boolean("masks_are_class_agnostic", false);
  out["share_box_across_classes"] = box.boolean("share_box_across_classes", false);
  box.require("predict_keypoints", false, "is not supported");
  box.require("convolve_then_upsample_masks", false, "is not supported yet");
  box.finish();
}

void read_post_processing(Message&& post, Json& out) {
  Message nms = post.child("batch_non_max_suppression");
  out["score_threshold"] = nms.number("score_threshold", 0.0);
  out["iou_threshold"] = nms.number("iou_threshold", 0.6);
  out["max_detections_per_class"] = nms.integer("max_detections_per_class", 100);
  out["max_total_detections"] = nms.integer("max_total_detections", 100);
  nms.require("change_coordinate_frame", true, "is not supported");
  for (const char* flag : {"use_static_shapes", "use_class_agnostic_nms", "use_partitioned_nms", "use_combined_nms",
                           "use_hard_nms", "use_cpu_nms"})
    nms.require(flag, false, "is not supported yet");
  if (nms.number("soft_nms_sigma", 0.0) != 0.0) nms.problem("soft_nms_sigma", "soft NMS is not supported yet");
  nms.ignore({"max_classes_per_detection"});  // class-agnostic NMS only
  nms.finish();
  const std::string converter = post.name("score_converter", "IDENTITY");
  if (converter == "SOFTMAX" || converter == "SIGMOID" || converter == "IDENTITY") out["score_converter"] = converter;
  else post.problem("score_converter", "expected IDENTITY, SIGMOID or SOFTMAX, found " + converter);
  out["logit_scale"] = post.number("logit_scale", 1.0);
  post.finish();
}

// The faster_rcnn fields that only training reads and mrcnn does not take (the samplers' sizes and
// the loss weights are keys).
constexpr std::initializer_list<const char*> kTrainingFields = {
    "second_stage_classification_loss", "hard_example_miner",
    "inplace_batchnorm_update", "use_matmul_gather_in_matcher", "use_static_balanced_label_sampler",
    "clip_anchors_to_image", "resize_masks", "use_static_shapes_for_eval", "use_partitioned_nms_in_first_stage",
    "return_raw_detections_during_predict", "output_final_box_features", "output_final_box_rpn_features"};

void read_extractor(Message&& extractor) {
  if (extractor.name("type", "") != kTfFasterRcnnExtractor)
    extractor.problem("type", std::string("only ") + kTfFasterRcnnExtractor + " is supported");
  if (extractor.integer("first_stage_features_stride", 16) != 16) extractor.problem("first_stage_features_stride", "must be 16");
  extractor.ignore({"batch_norm_trainable"});
  extractor.finish();
}

// The first stage: RPNConv (always ReLU6: its hyperparams take no activation) and the proposals' NMS.
void read_first_stage(Message& f, Json& out) {
  read_hyperparams(f.child("first_stage_box_predictor_conv_hyperparams"), "");
  out["atrous_rate"] = f.integer("first_stage_atrous_rate", 1);
  out["kernel_size"] = f.integer("first_stage_box_predictor_kernel_size", 3);
  out["depth"] = f.integer("first_stage_box_predictor_depth", 512);
  out["nms_score_threshold"] = f.number("first_stage_nms_score_threshold", 0.0);
  out["nms_iou_threshold"] = f.number("first_stage_nms_iou_threshold", 0.7);
  out["max_proposals"] = f.integer("first_stage_max_proposals", 300);
  out["minibatch_size"] = f.integer("first_stage_minibatch_size", 256);
  out["positive_balance_fraction"] = f.number("first_stage_positive_balance_fraction", 0.5);
  out["localization_loss_weight"] = f.number("first_stage_localization_loss_weight", 1.0);
  out["objectness_loss_weight"] = f.number("first_stage_objectness_loss_weight", 1.0);
}

// The second stage's sampler and loss weights (training).
void read_second_stage_training(Message& f, Json& out) {
  out["batch_size"] = f.integer("second_stage_batch_size", 64);
  out["balance_fraction"] = f.number("second_stage_balance_fraction", 0.25);
  out["localization_loss_weight"] = f.number("second_stage_localization_loss_weight", 1.0);
  out["classification_loss_weight"] = f.number("second_stage_classification_loss_weight", 1.0);
  out["mask_loss_weight"] = f.number("second_stage_mask_prediction_loss_weight", 1.0);
  // second_stage_classification_loss: weighted_softmax (the OD API's default) is what training
  // computes, its logit_scale a key; another loss (sigmoid, focal, bootstrapped) is left unread and
  // named as passed over with the other training-only fields.
  out["classification_logit_scale"] = 1.0;
  if (!f.has("second_stage_classification_loss")) return;
  Message loss = f.child("second_stage_classification_loss");
  if (!loss.has("weighted_softmax")) return;
  Message softmax = loss.child("weighted_softmax");
  out["classification_logit_scale"] = softmax.number("logit_scale", 1.0);
  if (out["classification_logit_scale"].get<double>() <= 0) softmax.problem("logit_scale", "must be above 0");
  softmax.finish();
  loss.finish();
}

// faster_rcnn { } as the model section's keys: model.arch, model.num_classes (with the background),
// model.tf.*. Absent fields take the proto's defaults.
Json read_faster_rcnn(Message& f) {
  Json tf = Json::object();  // filled before it goes into the model section (ordered_json moves its members)
  tf["number_of_stages"] = f.integer("number_of_stages", 2);
  const int64_t classes = f.integer("num_classes", 0);
  if (classes < 1) f.problem("num_classes", "must be at least 1");
  read_resizer(f.child("image_resizer"), tf["resizer"]);
  read_extractor(f.child("feature_extractor"));
  read_anchors(f.child("first_stage_anchor_generator"), tf["anchors"]);
  read_first_stage(f, tf["first_stage"]);
  tf["initial_crop_size"] = f.integer("initial_crop_size", 0);
  if (tf["initial_crop_size"].get<int64_t>() < 1) f.problem("initial_crop_size", "must be at least 1");
  tf["maxpool_kernel_size"] = f.integer("maxpool_kernel_size", 0);
  tf["maxpool_stride"] = f.integer("maxpool_stride", 0);
  read_box_predictor(f.child("second_stage_box_predictor"), tf["box_predictor"]);
  read_post_processing(f.child("second_stage_post_processing"), tf["second_stage"]);
  read_second_stage_training(f, tf["second_stage"]);
  for (const char* flag : {"use_matmul_crop_and_resize", "use_static_shapes", "use_combined_nms_in_first_stage"})
    f.require(flag, false, "is not supported yet");
  f.ignore(kTrainingFields);
  f.finish();
  // mrcnn counts the background class, TF does not.
  return {{"arch", kTfFasterRcnnArch}, {"num_classes", classes + 1}, {"tf", std::move(tf)}};
}

}  // namespace

Json tf_faster_rcnn_model(const Json& pipeline, const std::string& source) {
  std::vector<std::string> problems;
  Message root(&pipeline, "", &problems);
  Message model = root.child("model");
  if (!model.has("faster_rcnn")) throw Error(source + ": no model { faster_rcnn { ... } } block");
  Message faster_rcnn = model.child("faster_rcnn");
  Json section = read_faster_rcnn(faster_rcnn);
  if (!problems.empty()) {
    std::string message = source + ": " + std::to_string(problems.size()) + " field(s) the TF OD API model cannot take:";
    for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : " ") + problems[i];
    throw Error(message);
  }
  return section;
}

Json resolved_tf_faster_rcnn_config(const Json& pipeline, const std::string& source) {
  const Json doc = {{"model", tf_faster_rcnn_model(pipeline, source)}};
  require_valid(doc, source);
  return resolve(doc);
}

std::vector<std::pair<std::string, std::string>> tf_faster_rcnn_training_fields() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* field : kTrainingFields) out.emplace_back(field, "mrcnn's training of this family does not follow it");
  const std::string box = "second_stage_box_predictor.mask_rcnn_box_predictor.";
  const std::string initial = "the heads start as the published config's: dense layers variance_scaling (1, uniform, "
                              "FAN_AVG), convolutions truncated_normal stddev 0.01";
  for (const std::string& hyperparams :
       {std::string("first_stage_box_predictor_conv_hyperparams."), box + "fc_hyperparams.", box + "conv_hyperparams."}) {
    out.emplace_back(hyperparams + "regularizer", "no per-layer L2: train.optimizer.weight_decay applies to every weight");
    out.emplace_back(hyperparams + "initializer", initial);
  }
  out.emplace_back(box + "use_dropout", "mrcnn's box head has no dropout");
  out.emplace_back(box + "dropout_keep_probability", "mrcnn's box head has no dropout");
  out.emplace_back("feature_extractor.batch_norm_trainable", "the extractor's batch norms stay frozen");
  return out;
}

}  // namespace mrcnn::config
