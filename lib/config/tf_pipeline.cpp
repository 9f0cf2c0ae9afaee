#include "config/tf_pipeline.h"

#include <cmath>
#include <map>
#include <set>

#include "core/error.h"

namespace mrcnn::config {
namespace {

// The pipeline as leaf paths ("model.faster_rcnn.num_classes", "train_config.data_augmentation_options[1].
// random_adjust_brightness.max_delta"); repeated scalars form one leaf holding an array.
class Leaves {
 public:
  explicit Leaves(const Json& root) { flatten(root, ""); }

  bool has(const std::string& path) const { return values_.count(path) > 0; }
  // The leaf's value (marked as used), or nullptr.
  const Json* take(const std::string& path) {
    const auto it = values_.find(path);
    if (it == values_.end()) return nullptr;
    used_.insert(path);
    return &it->second;
  }
  double number(const std::string& path, double fallback) {
    const Json* v = take(path);
    return v && v->is_number() ? v->get<double>() : fallback;
  }
  // Leaf paths under a prefix, in order.
  std::vector<std::string> under(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [path, value] : values_)
      if (path.rfind(prefix, 0) == 0) out.push_back(path);
    return out;
  }
  // Marks every leaf under a prefix as used (a block that is understood as a whole).
  void use_all(const std::string& prefix) {
    for (const auto& p : under(prefix)) used_.insert(p);
  }
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& [path, value] : values_)
      if (!used_.count(path)) out.push_back(path + " = " + (value.is_string() ? value.get<std::string>() : value.dump()));
    return out;
  }

 private:
  void flatten(const Json& message, const std::string& prefix) {
    for (const auto& [key, values] : message.items()) {
      const std::string base = prefix + key;
      bool all_scalars = true;
      for (const auto& v : values) all_scalars = all_scalars && !v.is_object();
      if (all_scalars) {
        values_[base] = values.size() == 1 ? values[0] : values;
        continue;
      }
      for (size_t i = 0; i < values.size(); ++i) {
        const std::string path = values.size() > 1 ? base + "[" + std::to_string(i) + "]" : base;
        if (values[i].is_object() && !values[i].empty()) flatten(values[i], path + ".");
        else values_[path] = values[i];
      }
    }
  }
  std::map<std::string, Json> values_;
  std::set<std::string> used_;
};

void set_path(Json& doc, const std::string& dotted, Json value) {
  Json* node = &doc;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      (*node)[key] = std::move(value);
      return;
    }
    node = &(*node)[key];
    start = dot + 1;
  }
}

class Mapper {
 public:
  Mapper(Leaves& leaves, TfImport& out) : leaves_(leaves), out_(out) {}

  // Copies a number (scaled by `convert`) from the pipeline to a config key when present.
  template <typename Convert>
  void number(const std::string& from, const std::string& to, Convert convert) {
    const Json* v = leaves_.take(from);
    if (!v) return;
    if (!v->is_number()) {
      out_.warnings.push_back(from + ": expected a number, found " + v->dump() + " (not mapped)");
      return;
    }
    set(from, to, convert(v->get<double>()));
  }
  void number(const std::string& from, const std::string& to) {
    number(from, to, [](double v) { return Json(v); });
  }
  void integer(const std::string& from, const std::string& to, int64_t offset = 0) {
    number(from, to, [&](double v) { return Json(static_cast<int64_t>(std::llround(v)) + offset); });
  }
  void set(const std::string& from, const std::string& to, Json value) {
    out_.mapped.push_back(from + " -> " + to + " = " + value.dump());
    set_path(out_.config, to, std::move(value));
  }
  void note(const std::string& path, const std::string& why) {
    leaves_.use_all(path);
    out_.warnings.push_back(path + ": not mapped (" + why + ")");
  }

 private:
  Leaves& leaves_;
  TfImport& out_;
};

void map_model(Leaves& leaves, Mapper& map, TfImport& out) {
  std::string arch;
  for (const char* a : {"faster_rcnn", "ssd", "center_net"})
    if (!leaves.under(std::string("model.") + a).empty()) arch = a;
  if (arch.empty()) throw Error("no model { faster_rcnn { ... } } block: not a TF OD API (Mask/Faster) R-CNN pipeline");
  if (arch != "faster_rcnn")
    throw Error("model." + arch + ": mrcnn imports Mask R-CNN pipelines (model { faster_rcnn { ... } }), not " + arch);
  const std::string m = "model.faster_rcnn.";
  map.integer(m + "num_classes", "model.num_classes", 1);  // TF counts no background class
  map.integer(m + "image_resizer.keep_aspect_ratio_resizer.min_dimension", "model.min_size");
  if (out.config.contains("model") && out.config["model"].contains("min_size"))
    out.config["model"]["min_size"] = Json::array({out.config["model"]["min_size"]});
  map.integer(m + "image_resizer.keep_aspect_ratio_resizer.max_dimension", "model.max_size");
  if (const Json* type = leaves.take(m + "feature_extractor.type")) {
    const std::string t = type->get<std::string>();
    const std::string backbone = t.find("resnet101") != std::string::npos  ? "resnet101"
                                 : t.find("resnet50") != std::string::npos ? "resnet50"
                                 : t.find("resnet34") != std::string::npos ? "resnet34"
                                                                            : "";
    if (backbone.empty())
      out.warnings.push_back(m + "feature_extractor.type = " + t + ": not mapped (mrcnn has ResNet-18/34/50/101 FPN "
                             "backbones; the default resnet50 is used)");
    else
      map.set(m + "feature_extractor.type", "model.backbone", backbone);
  }
  const std::string grid = m + "first_stage_anchor_generator.grid_anchor_generator.";
  if (const Json* ratios = leaves.take(grid + "aspect_ratios")) {
    // TF's aspect ratio is width / height; torchvision's (and mrcnn's) is height / width.
    Json inverted = Json::array();
    for (const auto& r : ratios->is_array() ? *ratios : Json::array({*ratios})) inverted.push_back(1.0 / r.get<double>());
    map.set(grid + "aspect_ratios", "model.anchor.aspect_ratios", inverted);
  }
  if (const Json* scales = leaves.take(grid + "scales")) {
    const Json list = scales->is_array() ? *scales : Json::array({*scales});
    const double base = leaves.number(grid + "height", 256);
    leaves.take(grid + "width");
    if (list.size() == 5) {
      Json sizes = Json::array();
      for (const auto& s : list) sizes.push_back(Json::array({std::llround(s.get<double>() * base)}));
      map.set(grid + "scales", "model.anchor.sizes", sizes);
    } else {
      out.warnings.push_back(grid + "scales = " + list.dump() + ": not mapped (the FPN takes one anchor size per "
                             "level P2-P6, 5 sizes; kept 32, 64, 128, 256, 512)");
    }
  }
  for (const char* stride : {"height_stride", "width_stride", "height_offset", "width_offset"})
    if (leaves.has(grid + stride))
      map.note(grid + stride, "the FPN levels fix the anchor strides at 4-64 pixels");
  map.number(m + "first_stage_nms_iou_threshold", "model.rpn.nms_thresh");
  if (leaves.has(m + "first_stage_max_proposals")) {
    const double n = leaves.number(m + "first_stage_max_proposals", 0);
    map.set(m + "first_stage_max_proposals", "model.rpn.post_nms_top_n_train", static_cast<int64_t>(n));
    map.set(m + "first_stage_max_proposals", "model.rpn.post_nms_top_n_test", static_cast<int64_t>(n));
  }
  map.integer(m + "first_stage_minibatch_size", "model.rpn.batch_size_per_image");
  map.number(m + "first_stage_positive_balance_fraction", "model.rpn.positive_fraction");
  map.integer(m + "second_stage_batch_size", "model.roi.batch_size_per_image");
  map.number(m + "second_stage_balance_fraction", "model.roi.positive_fraction");
  const std::string nms = m + "second_stage_post_processing.batch_non_max_suppression.";
  map.number(nms + "score_threshold", "model.roi.score_thresh");
  map.number(nms + "iou_threshold", "model.roi.nms_thresh");
  map.integer(nms + "max_total_detections", "model.roi.detections_per_img");
  const std::string box = m + "second_stage_box_predictor.mask_rcnn_box_predictor.";
  const double mask_h = leaves.number(box + "mask_height", 0), mask_w = leaves.number(box + "mask_width", 0);
  if (mask_h > 0 || mask_w > 0) {
    const auto side = static_cast<int64_t>(std::max(mask_h, mask_w));
    // The head pools at half the mask side, so the side must be even.
    map.set(box + "mask_height/mask_width", "model.mask.resolution", side + side % 2);
    if (mask_h != mask_w) out.warnings.push_back(box + "mask_height != mask_width: mrcnn masks are square (" +
                                                 std::to_string(side + side % 2) + ")");
  }
  leaves.take(box + "predict_instance_masks");
}

void map_learning_rate(Leaves& leaves, Mapper& map, TfImport& out, const std::string& lr) {
  if (!leaves.under(lr + "constant_learning_rate").empty()) {
    map.number(lr + "constant_learning_rate.learning_rate", "train.optimizer.lr");
    map.set(lr + "constant_learning_rate", "train.lr_schedule.type", "constant");
    map.set(lr + "constant_learning_rate", "train.lr_schedule.warmup_steps", 0);
  } else if (!leaves.under(lr + "manual_step_learning_rate").empty()) {
    const std::string p = lr + "manual_step_learning_rate.";
    const double initial = leaves.number(p + "initial_learning_rate", 0);
    map.set(p + "initial_learning_rate", "train.optimizer.lr", initial);
    std::vector<std::pair<int64_t, double>> steps;
    for (const auto& path : leaves.under(p + "schedule"))
      if (path.size() > 5 && path.substr(path.size() - 5) == ".step") {
        const std::string entry = path.substr(0, path.size() - 5);
        steps.emplace_back(static_cast<int64_t>(leaves.number(path, 0)), leaves.number(entry + ".learning_rate", 0));
      }
    Json milestones = Json::array();
    double gamma = 0.1, previous = initial;
    bool constant_ratio = true;
    for (size_t i = 0; i < steps.size(); ++i) {
      milestones.push_back(steps[i].first);
      const double ratio = previous > 0 ? steps[i].second / previous : 0;
      if (i == 0) gamma = ratio;
      constant_ratio = constant_ratio && std::abs(ratio - gamma) <= 1e-6 * std::max(1.0, gamma);
      previous = steps[i].second;
    }
    map.set(p + "schedule", "train.lr_schedule.type", "multistep");
    map.set(p + "schedule", "train.lr_schedule.milestones", milestones);
    if (!steps.empty()) map.set(p + "schedule", "train.lr_schedule.gamma", gamma);
    if (!constant_ratio)
      out.warnings.push_back(p + "schedule: the rates do not fall by one constant factor; mrcnn's multistep uses "
                             "gamma " + std::to_string(gamma) + " at every milestone");
    if (const Json* warmup = leaves.take(p + "warmup"); warmup && warmup->is_boolean() && warmup->get<bool>())
      out.warnings.push_back(p + "warmup: TF warms up to the first schedule step; set train.lr_schedule.warmup_steps");
    else
      map.set(p + "schedule", "train.lr_schedule.warmup_steps", 0);
  } else if (!leaves.under(lr + "cosine_decay_learning_rate").empty()) {
    const std::string p = lr + "cosine_decay_learning_rate.";
    const double base = leaves.number(p + "learning_rate_base", 0);
    map.set(p + "learning_rate_base", "train.optimizer.lr", base);
    map.set(p + "learning_rate_base", "train.lr_schedule.type", "cosine");
    const double warmup_lr = leaves.number(p + "warmup_learning_rate", 0);
    map.integer(p + "warmup_steps", "train.lr_schedule.warmup_steps");
    if (base > 0) map.set(p + "warmup_learning_rate", "train.lr_schedule.warmup_factor", std::max(1e-6, warmup_lr / base));
    if (const Json* total = leaves.take(p + "total_steps"))
      out.mapped.push_back(p + "total_steps = " + total->dump() + " (mrcnn's cosine spans train.steps)");
    leaves.take(p + "hold_base_rate_steps");
  } else if (!leaves.under(lr).empty()) {
    map.note(lr, "only constant, manual step and cosine decay schedules have an equivalent");
  }
}

void map_training(Leaves& leaves, Mapper& map, TfImport& out) {
  const std::string t = "train_config.";
  map.integer(t + "batch_size", "train.batch_size");
  if (leaves.has(t + "num_steps")) {
    map.integer(t + "num_steps", "train.steps");
    map.set(t + "num_steps", "train.epochs", 0);
  }
  map.number(t + "gradient_clipping_by_norm", "train.grad_clip_norm");
  if (!leaves.under(t + "optimizer.momentum_optimizer").empty()) {
    const std::string o = t + "optimizer.momentum_optimizer.";
    map.set(o, "train.optimizer.type", "sgd");
    map.number(o + "momentum_optimizer_value", "train.optimizer.momentum");
    map_learning_rate(leaves, map, out, o + "learning_rate.");
  } else if (!leaves.under(t + "optimizer.adam_optimizer").empty()) {
    const std::string o = t + "optimizer.adam_optimizer.";
    map.set(o, "train.optimizer.type", "adamw");
    map.set(o, "train.optimizer.weight_decay", 0.0);  // TF's Adam has no decoupled weight decay
    map_learning_rate(leaves, map, out, o + "learning_rate.");
  } else if (!leaves.under(t + "optimizer").empty()) {
    map.note(t + "optimizer", "only momentum_optimizer and adam_optimizer have an equivalent");
  }
  if (const Json* ema = leaves.take(t + "optimizer.use_moving_average"); ema && ema->is_boolean() && ema->get<bool>())
    out.warnings.push_back(t + "optimizer.use_moving_average: not mapped (no weight averaging in mrcnn)");
  if (const Json* checkpoint = leaves.take(t + "fine_tune_checkpoint")) {
    const std::string path = checkpoint->get<std::string>();
    const auto ext = path.substr(path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.'));
    if (ext == ".pth" || ext == ".pt" || ext == ".safetensors")
      map.set(t + "fine_tune_checkpoint", "train.init_weights", path);
    else
      out.warnings.push_back(t + "fine_tune_checkpoint = " + path + ": not mapped (a TensorFlow checkpoint; start "
                             "from torchvision's COCO weights with --init-weights maskrcnn_resnet50_fpn_coco-*.pth)");
  }
  for (const char* key : {"fine_tune_checkpoint_type", "from_detection_checkpoint", "load_all_detection_checkpoint_vars"})
    leaves.take(t + key);

  // data_augmentation_options, in order.
  Json augmentations = Json::array();
  std::set<std::string> seen;
  for (const auto& path : leaves.under(t + "data_augmentation_options")) {
    const size_t end = path.find('.', (t + "data_augmentation_options").size());
    const std::string option = path.substr(0, end);  // ...options[i]
    if (!seen.insert(option).second) continue;
    const std::string rest = end == std::string::npos ? "" : path.substr(end + 1);
    const std::string kind = rest.substr(0, rest.find('.'));
    const std::string p = option + "." + kind + ".";
    if (kind == "random_horizontal_flip") {
      augmentations.push_back({{"type", "horizontal_flip"}, {"prob", leaves.number(p + "probability", 0.5)}});
      leaves.take(option + "." + kind);
    } else if (kind == "random_adjust_brightness") {
      augmentations.push_back({{"type", "color_jitter"}, {"prob", 1.0}, {"brightness", leaves.number(p + "max_delta", 0.2)},
                               {"contrast", 0.0}, {"saturation", 0.0}, {"hue", 0.0}});
    } else if (kind == "random_adjust_contrast" || kind == "random_adjust_saturation") {
      const double lo = leaves.number(p + "min_delta", 0.8), hi = leaves.number(p + "max_delta", 1.25);
      Json jitter = {{"type", "color_jitter"}, {"prob", 1.0}, {"brightness", 0.0}, {"contrast", 0.0},
                     {"saturation", 0.0}, {"hue", 0.0}};
      jitter[kind == "random_adjust_contrast" ? "contrast" : "saturation"] = std::min(1.0, std::max(1 - lo, hi - 1));
      augmentations.push_back(jitter);
    } else if (kind == "random_crop_image") {
      const double min_area = leaves.number(p + "min_area", 0.1), max_area = leaves.number(p + "max_area", 1.0);
      augmentations.push_back({{"type", "random_crop"},
                               {"prob", 1.0 - leaves.number(p + "random_coef", 0.0)},
                               {"min_scale", std::sqrt(min_area)},
                               {"max_scale", std::sqrt(max_area)},
                               {"min_visible", leaves.number(p + "overlap_thresh", 0.3)}});
      for (const char* k : {"min_object_covered", "min_aspect_ratio", "max_aspect_ratio", "clip_boxes"})
        if (leaves.has(p + k)) leaves.take(p + k);
      leaves.take(option + "." + kind);
    } else {
      map.note(option, "no equivalent augmentation in mrcnn (horizontal flip, colour jitter, random crop)");
      continue;
    }
    out.mapped.push_back(option + " -> data.augmentation[" + std::to_string(augmentations.size() - 1) + "] (" +
                         augmentations.back()["type"].get<std::string>() + ")");
    leaves.use_all(option + "." + kind);
  }
  if (!seen.empty()) set_path(out.config, "data.augmentation", augmentations);
}

void map_input(Leaves& leaves, Mapper& map, TfImport& out, const std::string& reader, const std::string& set,
               const std::string& label_map) {
  if (leaves.under(reader).empty()) return;
  const std::string records = reader + ".tf_record_input_reader.input_path";
  if (const Json* paths = leaves.take(records)) {
    const Json list = paths->is_array() ? *paths : Json::array({*paths});
    map.set(reader + ".tf_record_input_reader", "data." + set + ".format", "tfrecord");
    map.set(records, "data." + set + ".annotations", list[0]);
    if (list.size() > 1)
      out.warnings.push_back(records + ": " + std::to_string(list.size()) + " paths; mrcnn reads one pattern per set "
                             "(the first; use a glob that covers all)");
  }
  if (!label_map.empty()) {
    leaves.take(reader + ".label_map_path");
    map.set("--label-map", "data." + set + ".label_map", label_map);
  } else if (leaves.has(reader + ".label_map_path")) {
    map.set(reader + ".label_map_path", "data." + set + ".label_map", *leaves.take(reader + ".label_map_path"));
  }
  for (const char* k : {"load_instance_masks", "mask_type", "shuffle", "num_readers", "num_epochs", "sample_1_of_n_examples"})
    leaves.take(reader + "." + k);
}

}  // namespace

TfImport import_tf_pipeline(const Json& pipeline, const std::string& source, const std::string& label_map) {
  TfImport out;
  out.config = Json::object();
  out.config["description"] = "Imported from the TF OD API pipeline " + source;
  Leaves leaves(pipeline);
  Mapper map(leaves, out);
  map_model(leaves, map, out);
  map_training(leaves, map, out);
  // TF2 pipelines name the readers the same; TF1 may repeat eval_input_reader: the first is used.
  map_input(leaves, map, out, "train_input_reader", "train", label_map);
  std::string eval_reader = "eval_input_reader";
  if (leaves.under(eval_reader + ".").empty() && !leaves.under(eval_reader + "[0]").empty()) eval_reader += "[0]";
  map_input(leaves, map, out, eval_reader, "val", label_map);
  if (out.config.contains("data") && out.config["data"].contains("val"))
    out.config["data"]["val"]["images"] = "";
  // TF runs often stop (num_steps) before schedule steps they inherited; those never apply.
  if (out.config.contains("train") && out.config["train"].contains("steps") &&
      out.config["train"].contains("lr_schedule") && out.config["train"]["lr_schedule"].contains("milestones")) {
    const int64_t steps = out.config["train"]["steps"].get<int64_t>();
    Json kept = Json::array();
    for (const auto& m : out.config["train"]["lr_schedule"]["milestones"]) {
      if (m.get<int64_t>() < steps) kept.push_back(m);
      else out.warnings.push_back("train_config...schedule step " + m.dump() + ": at or after num_steps " +
                                  std::to_string(steps) + ", never reached (dropped)");
    }
    out.config["train"]["lr_schedule"]["milestones"] = kept;
  }
  for (const auto& field : leaves.unused()) out.warnings.push_back(field + ": not mapped");
  return out;
}

}  // namespace mrcnn::config
