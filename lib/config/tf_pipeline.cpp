#include "config/tf_pipeline.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include "config/tf_faster_rcnn.h"
#include "core/error.h"
#include "core/log.h"
#include "data/label_map.h"

namespace mrcnn::config {
namespace {

// Text as a message shows it: hostile files have megabyte names and values.
std::string shorten(const std::string& text) {
  return text.size() <= 200 ? text : text.substr(0, 160) + "... (" + std::to_string(text.size()) + " characters)";
}

// A value as a message shows it: its JSON, shortened.
std::string preview(const Json& value) {
  if (value.is_object()) return value.empty() ? "an empty message {}" : "a message { ... }";
  return value.is_string() ? "\"" + shorten(value.get<std::string>()) + "\"" : shorten(value.dump());
}

// The pipeline as leaf paths ("model.faster_rcnn.num_classes", "train_config.data_augmentation_options[1].
// random_adjust_brightness.max_delta"); repeated scalars form one leaf holding an array. The typed
// getters return nothing when a field is absent and throw Error naming the file, the path, what was
// expected and what was found when it has another type (as TF's own parser would refuse it).
class Leaves {
 public:
  Leaves(const Json& root, const std::string& source) : source_(source) { flatten(root, ""); }

  const std::string& source() const { return source_; }
  bool has(const std::string& path) const { return values_.count(path) > 0; }
  // The leaf's value (marked as used), or nullptr.
  const Json* take(const std::string& path) {
    const auto it = values_.find(path);
    if (it == values_.end()) return nullptr;
    used_.insert(path);
    return &it->second;
  }
  std::optional<double> number(const std::string& path) {
    const Json* v = typed(path, "a number");
    if (v && !v->is_number()) throw wrong(path, "a number", *v);
    return v ? std::optional<double>(v->get<double>()) : std::nullopt;
  }
  double number(const std::string& path, double fallback) { return number(path).value_or(fallback); }
  // TF's integer fields are int32 or uint32.
  std::optional<int64_t> integer(const std::string& path) {
    const char* expected = "an integer (32-bit)";
    const Json* v = typed(path, expected);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > kMaxUint32) ||
        (!v->is_number_unsigned() && (v->get<int64_t>() < kMinInt32 || v->get<int64_t>() > kMaxUint32)))
      throw wrong(path, expected, *v);
    return v->get<int64_t>();
  }
  std::optional<std::string> text(const std::string& path) {
    const Json* v = typed(path, "a string");
    if (v && !v->is_string()) throw wrong(path, "a string", *v);
    return v ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
  }
  std::optional<bool> flag(const std::string& path) {
    const Json* v = typed(path, "true or false");
    if (v && !v->is_boolean()) throw wrong(path, "true or false", *v);
    return v ? std::optional<bool>(v->get<bool>()) : std::nullopt;
  }
  // A repeated field of numbers (one value or a list), each checked by `ok`.
  template <typename Check>
  std::optional<std::vector<double>> numbers(const std::string& path, const std::string& expected, Check ok) {
    const Json* v = typed(path, expected);
    if (!v) return std::nullopt;
    std::vector<double> out;
    for (const auto& item : v->is_array() ? *v : Json::array({*v})) {
      if (!item.is_number() || !ok(item.get<double>())) throw wrong(path, expected, item);
      out.push_back(item.get<double>());
    }
    return out;
  }
  std::optional<std::vector<std::string>> texts(const std::string& path) {
    const Json* v = typed(path, "strings");
    if (!v) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& item : v->is_array() ? *v : Json::array({*v})) {
      if (!item.is_string()) throw wrong(path, "strings", item);
      out.push_back(item.get<std::string>());
    }
    if (out.empty()) throw wrong(path, "at least one string", *v);
    return out;
  }
  Error wrong(const std::string& path, const std::string& expected, const Json& found) const {
    return Error(source_ + ": " + shorten(path) + ": expected " + expected + ", found " + preview(found));
  }

  // Leaf paths under a prefix, in order (a range of the sorted map).
  std::vector<std::string> under(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto it = values_.lower_bound(prefix); it != values_.end() && it->first.rfind(prefix, 0) == 0; ++it)
      out.push_back(it->first);
    return out;
  }
  bool any_under(const std::string& prefix) const {
    const auto it = values_.lower_bound(prefix);
    return it != values_.end() && it->first.rfind(prefix, 0) == 0;
  }
  // Marks every leaf under a prefix as used (a block that is understood as a whole).
  void use_all(const std::string& prefix) {
    for (const auto& path : under(prefix)) used_.insert(path);
  }
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& [path, value] : values_)
      if (!used_.count(path))
        out.push_back(shorten(path) + " = " + (value.is_string() ? shorten(value.get<std::string>()) : preview(value)));
    return out;
  }

 private:
  static constexpr int64_t kMinInt32 = -2147483648LL, kMaxUint32 = 4294967295LL;
  // Leaf paths repeat their parents' names: a hostile file of long names over many levels would
  // make gigabytes of them. Real pipelines make a few kilobytes.
  static constexpr size_t kMaxPathBytes = size_t(64) << 20;

  // The leaf's value, nullptr when absent; a message where a value is expected is an error.
  const Json* typed(const std::string& path, const std::string& expected) {
    const Json* v = take(path);
    if (!v && (any_under(path + ".") || any_under(path + "[")))
      throw Error(source_ + ": " + shorten(path) + ": expected " + expected + ", found a message { ... }");
    return v;
  }
  // Counts the bytes of every path made (stored leaves and the prefixes of messages on the way).
  std::string counted(std::string path) {
    path_bytes_ += path.size();
    if (path_bytes_ > kMaxPathBytes)
      throw Error(source_ + ": more than " + std::to_string(kMaxPathBytes >> 20) + " MB of field paths (" +
                  std::to_string(values_.size()) + " fields, at " + preview(Json(path)) + "): not a pipeline.config");
    return path;
  }
  // Recursion bounded by the text format's nesting limit (io/text_proto.h).
  void flatten(const Json& message, const std::string& prefix) {
    for (const auto& [key, values] : message.items()) {
      const std::string base = counted(prefix + key);
      bool all_scalars = true;
      for (const auto& v : values) all_scalars = all_scalars && !v.is_object();
      if (all_scalars) {
        values_[base] = values.size() == 1 ? values[0] : values;
        continue;
      }
      for (size_t i = 0; i < values.size(); ++i) {
        const std::string path = values.size() > 1 ? counted(base + "[" + std::to_string(i) + "]") : base;
        if (values[i].is_object() && !values[i].empty()) flatten(values[i], counted(path + "."));
        else values_[path] = values[i];
      }
    }
  }
  std::string source_;
  std::map<std::string, Json> values_;
  std::unordered_set<std::string> used_;
  size_t path_bytes_ = 0;
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

  // Copies a number from the pipeline to a config key when present (a wrong type is an Error).
  void number(const std::string& from, const std::string& to) {
    if (const auto v = leaves_.number(from)) set(from, to, *v);
  }
  void integer(const std::string& from, const std::string& to, int64_t offset = 0) {
    if (const auto v = leaves_.integer(from)) set(from, to, *v + offset);
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
    if (leaves.any_under(std::string("model.") + a)) arch = a;
  if (arch.empty())
    throw Error(leaves.source() + ": no model { faster_rcnn { ... } } block: not a TF OD API (Mask/Faster) R-CNN "
                "pipeline");
  if (arch != "faster_rcnn")
    throw Error(leaves.source() + ": model." + arch + ": mrcnn imports Mask R-CNN pipelines (model { faster_rcnn "
                "{ ... } }), not " + arch);
  const std::string m = "model.faster_rcnn.";
  map.integer(m + "num_classes", "model.num_classes", 1);  // TF counts no background class
  map.integer(m + "image_resizer.keep_aspect_ratio_resizer.min_dimension", "model.min_size");
  if (out.config.contains("model") && out.config["model"].contains("min_size"))
    out.config["model"]["min_size"] = Json::array({out.config["model"]["min_size"]});
  map.integer(m + "image_resizer.keep_aspect_ratio_resizer.max_dimension", "model.max_size");
  if (const auto type = leaves.text(m + "feature_extractor.type")) {
    const std::string& t = *type;
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
  // Ratios and sizes are bounded so that their inverses and products stay finite numbers.
  const auto in_range = [](double v) { return v > 1e-6 && v < 1e6; };
  if (const auto ratios = leaves.numbers(grid + "aspect_ratios", "positive numbers (width / height)", in_range)) {
    // TF's aspect ratio is width / height; torchvision's (and mrcnn's) is height / width.
    Json inverted = Json::array();
    for (const double r : *ratios) inverted.push_back(1.0 / r);
    map.set(grid + "aspect_ratios", "model.anchor.aspect_ratios", inverted);
  }
  if (const auto scales = leaves.numbers(grid + "scales", "positive numbers", in_range)) {
    const double base = leaves.number(grid + "height", 256);
    if (!in_range(base)) throw leaves.wrong(grid + "height", "a positive number", base);
    leaves.take(grid + "width");
    if (scales->size() == 5) {
      Json sizes = Json::array();
      for (const double scale : *scales) sizes.push_back(Json::array({std::llround(scale * base)}));
      map.set(grid + "scales", "model.anchor.sizes", sizes);
    } else {
      out.warnings.push_back(grid + "scales = " + Json(*scales).dump() + ": not mapped (the FPN takes one anchor "
                             "size per level P2-P6, 5 sizes; kept 32, 64, 128, 256, 512)");
    }
  }
  for (const char* stride : {"height_stride", "width_stride", "height_offset", "width_offset"})
    if (leaves.has(grid + stride))
      map.note(grid + stride, "the FPN levels fix the anchor strides at 4-64 pixels");
  map.number(m + "first_stage_nms_iou_threshold", "model.rpn.nms_thresh");
  if (const auto n = leaves.integer(m + "first_stage_max_proposals")) {
    map.set(m + "first_stage_max_proposals", "model.rpn.post_nms_top_n_train", *n);
    map.set(m + "first_stage_max_proposals", "model.rpn.post_nms_top_n_test", *n);
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
  const int64_t mask_h = leaves.integer(box + "mask_height").value_or(0);
  const int64_t mask_w = leaves.integer(box + "mask_width").value_or(0);
  if (mask_h > 0 || mask_w > 0) {
    const int64_t side = std::max(mask_h, mask_w);
    // The head pools at half the mask side, so the side must be even.
    map.set(box + "mask_height/mask_width", "model.mask.resolution", side + side % 2);
    if (mask_h != mask_w) out.warnings.push_back(box + "mask_height != mask_width: mrcnn masks are square (" +
                                                 std::to_string(side + side % 2) + ")");
  }
  leaves.take(box + "predict_instance_masks");
}

// A Faster R-CNN on the TF OD API's Keras Inception-ResNet-v2: mrcnn's TF family
// (model.arch tf_faster_rcnn), every model field read by config/tf_faster_rcnn.h, so none is left
// unmapped; the training-only fields are named as passed over (not carried over).
bool is_tf_family(Leaves& leaves) {
  return leaves.text("model.faster_rcnn.feature_extractor.type").value_or("") == kTfFasterRcnnExtractor;
}

void map_tf_family(const Json& pipeline, Leaves& leaves, Mapper& map, TfImport& out) {
  static const std::string kSoftmaxLoss = "model.faster_rcnn.second_stage_classification_loss.weighted_softmax";
  const Json model = tf_faster_rcnn_model(pipeline, leaves.source());
  for (const auto& [key, value] : model.items()) map.set("model.faster_rcnn", "model." + key, value);
  for (const auto& [field, instead] : tf_faster_rcnn_training_fields()) {
    const std::string path = "model.faster_rcnn." + field;
    if (field == "second_stage_classification_loss" && leaves.any_under(kSoftmaxLoss))
      continue;  // mapped: model.tf.second_stage.classification_logit_scale
    if (leaves.has(path) || leaves.any_under(path + ".") || leaves.any_under(path + "["))
      out.warnings.push_back(path + ": training only, passed over (" + instead + ")");
  }
  leaves.use_all("model.");
}

void map_learning_rate(Leaves& leaves, Mapper& map, TfImport& out, const std::string& lr) {
  if (leaves.any_under(lr + "constant_learning_rate")) {
    map.number(lr + "constant_learning_rate.learning_rate", "train.optimizer.lr");
    map.set(lr + "constant_learning_rate", "train.lr_schedule.type", "constant");
    map.set(lr + "constant_learning_rate", "train.lr_schedule.warmup_steps", 0);
  } else if (leaves.any_under(lr + "manual_step_learning_rate")) {
    const std::string p = lr + "manual_step_learning_rate.";
    const double initial = leaves.number(p + "initial_learning_rate", 0);
    map.set(p + "initial_learning_rate", "train.optimizer.lr", initial);
    std::vector<std::pair<int64_t, double>> steps;
    for (const auto& path : leaves.under(p + "schedule"))
      if (path.size() > 5 && path.substr(path.size() - 5) == ".step") {
        const std::string entry = path.substr(0, path.size() - 5);
        steps.emplace_back(leaves.integer(path).value_or(0), leaves.number(entry + ".learning_rate", 0));
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
    if (leaves.flag(p + "warmup").value_or(false))
      out.warnings.push_back(p + "warmup: TF warms up to the first schedule step; set train.lr_schedule.warmup_steps");
    else
      map.set(p + "schedule", "train.lr_schedule.warmup_steps", 0);
  } else if (leaves.any_under(lr + "cosine_decay_learning_rate")) {
    const std::string p = lr + "cosine_decay_learning_rate.";
    const double base = leaves.number(p + "learning_rate_base", 0);
    map.set(p + "learning_rate_base", "train.optimizer.lr", base);
    map.set(p + "learning_rate_base", "train.lr_schedule.type", "cosine");
    const double warmup_lr = leaves.number(p + "warmup_learning_rate", 0);
    map.integer(p + "warmup_steps", "train.lr_schedule.warmup_steps");
    if (base > 0) map.set(p + "warmup_learning_rate", "train.lr_schedule.warmup_factor", std::max(1e-6, warmup_lr / base));
    if (const auto total = leaves.integer(p + "total_steps"))
      out.mapped.push_back(p + "total_steps = " + std::to_string(*total) + " (mrcnn's cosine spans train.steps)");
    leaves.take(p + "hold_base_rate_steps");
  } else if (leaves.any_under(lr)) {
    map.note(lr, "only constant, manual step and cosine decay schedules have an equivalent");
  }
}

// A PyTorch file becomes train.init_weights; so does a TensorFlow checkpoint for the TF OD API
// family (mrcnn-train reads it as fine_tune_checkpoint_type says), else it is named as not carried
// over (torchvision's family cannot read it).
void map_fine_tune_checkpoint(Leaves& leaves, Mapper& map, TfImport& out, const std::string& t) {
  const bool tf_family = out.config.value("model", Json::object()).value("arch", "") == kTfFasterRcnnArch;
  if (const auto checkpoint = leaves.text(t + "fine_tune_checkpoint")) {
    const std::string& path = *checkpoint;
    const auto ext = path.substr(path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.'));
    if (tf_family || ext == ".pth" || ext == ".pt" || ext == ".safetensors")
      map.set(t + "fine_tune_checkpoint", "train.init_weights", path);
    else
      out.warnings.push_back(t + "fine_tune_checkpoint = " + path + ": not mapped (a TensorFlow checkpoint; start "
                             "from torchvision's COCO weights with --init-weights maskrcnn_resnet50_fpn_coco-*.pth)");
  }
  if (const auto type = leaves.text(t + "fine_tune_checkpoint_type"); type && tf_family) {
    if (*type == "detection" || *type == "classification" || *type == "full")
      map.set(t + "fine_tune_checkpoint_type", "model.tf.fine_tune_checkpoint_type", *type);
    else
      out.warnings.push_back(t + "fine_tune_checkpoint_type = " + *type +
                             ": not mapped (mrcnn knows detection, classification and full)");
  }
  for (const char* key : {"fine_tune_checkpoint_type", "from_detection_checkpoint", "load_all_detection_checkpoint_vars"})
    leaves.take(t + key);
}

void map_training(Leaves& leaves, Mapper& map, TfImport& out) {
  const std::string t = "train_config.";
  map.integer(t + "batch_size", "train.batch_size");
  if (leaves.has(t + "num_steps")) {
    map.integer(t + "num_steps", "train.steps");
    map.set(t + "num_steps", "train.epochs", 0);
  }
  map.number(t + "gradient_clipping_by_norm", "train.grad_clip_norm");
  if (leaves.any_under(t + "optimizer.momentum_optimizer")) {
    const std::string o = t + "optimizer.momentum_optimizer.";
    map.set(o, "train.optimizer.type", "sgd");
    map.number(o + "momentum_optimizer_value", "train.optimizer.momentum");
    map_learning_rate(leaves, map, out, o + "learning_rate.");
  } else if (leaves.any_under(t + "optimizer.adam_optimizer")) {
    const std::string o = t + "optimizer.adam_optimizer.";
    map.set(o, "train.optimizer.type", "adamw");
    map.set(o, "train.optimizer.weight_decay", 0.0);  // TF's Adam has no decoupled weight decay
    map_learning_rate(leaves, map, out, o + "learning_rate.");
  } else if (leaves.any_under(t + "optimizer")) {
    map.note(t + "optimizer", "only momentum_optimizer and adam_optimizer have an equivalent");
  }
  if (leaves.flag(t + "optimizer.use_moving_average").value_or(false))
    out.warnings.push_back(t + "optimizer.use_moving_average: not mapped (no weight averaging in mrcnn)");
  map_fine_tune_checkpoint(leaves, map, out, t);

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
      const auto area = [&](const std::string& key, double fallback) {
        const double v = leaves.number(p + key, fallback);
        if (!(v >= 0 && v <= 1)) throw leaves.wrong(p + key, "a number from 0 to 1", v);
        return v;
      };
      const double min_area = area("min_area", 0.1), max_area = area("max_area", 1.0);
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
  if (!leaves.any_under(reader)) return;
  const std::string records = reader + ".tf_record_input_reader.input_path";
  if (const auto list = leaves.texts(records)) {
    map.set(reader + ".tf_record_input_reader", "data." + set + ".format", "tfrecord");
    map.set(records, "data." + set + ".annotations", list->front());
    if (list->size() > 1)
      out.warnings.push_back(records + ": " + std::to_string(list->size()) + " paths; mrcnn reads one pattern per set "
                             "(the first; use a glob that covers all)");
  }
  const auto pipeline_label_map = leaves.text(reader + ".label_map_path");
  if (!label_map.empty())
    map.set("--label-map", "data." + set + ".label_map", label_map);
  else if (pipeline_label_map)
    map.set(reader + ".label_map_path", "data." + set + ".label_map", *pipeline_label_map);
  for (const char* k : {"load_instance_masks", "mask_type", "shuffle", "num_readers", "num_epochs", "sample_1_of_n_examples"})
    leaves.take(reader + "." + k);
}

// The label map is read and checked at import, so a broken one fails here rather than in a training
// run; the configuration refers to it by path (data.train.label_map), where mrcnn-train, mrcnn-eval
// and mrcnn-infer read it. Without num_classes in the pipeline, the label map's largest id sets it.
void check_label_map(const std::string& path, const std::string& source, Mapper& map, TfImport& out) {
  const data::LabelMap labels = data::LabelMap::read(path);
  const auto& [largest, name] = *labels.names().rbegin();
  Json& model = out.config["model"];
  if (!model.contains("num_classes")) {
    map.set(path, "model.num_classes", largest + 1);
  } else if (const int64_t num_classes = model["num_classes"].get<int64_t>() - 1; largest > num_classes) {
    throw Error(path + ": class id " + std::to_string(largest) + " (" + name + ") is larger than " + source +
                "'s model.faster_rcnn.num_classes = " + std::to_string(num_classes) + " (TF counts no background)");
  }
}

}  // namespace

TfImport import_tf_pipeline(const Json& pipeline, const std::string& source, const std::string& label_map) {
  TfImport out;
  out.config = Json::object();
  out.config["description"] = "Imported from the TF OD API pipeline " + source;
  Leaves leaves(pipeline, source);
  Mapper map(leaves, out);
  if (is_tf_family(leaves)) map_tf_family(pipeline, leaves, map, out);
  else map_model(leaves, map, out);
  map_training(leaves, map, out);
  // TF2 pipelines name the readers the same; TF1 may repeat eval_input_reader: the first is used.
  map_input(leaves, map, out, "train_input_reader", "train", label_map);
  std::string eval_reader = "eval_input_reader";
  if (!leaves.any_under(eval_reader + ".") && leaves.any_under(eval_reader + "[0]")) eval_reader += "[0]";
  map_input(leaves, map, out, eval_reader, "val", label_map);
  if (out.config.contains("data") && out.config["data"].contains("val"))
    out.config["data"]["val"]["images"] = "";
  const Json data = out.config.value("data", Json::object());
  const auto label_map_of = [&](const char* set) { return data.value(set, Json::object()).value("label_map", ""); };
  if (!label_map.empty()) {
    if (label_map_of("train").empty()) map.set("--label-map", "data.train.label_map", label_map);  // no train reader
    check_label_map(label_map, source, map, out);
  }
  for (const char* set : {"train", "val"}) {  // the pipeline's own, where they exist (often placeholders)
    std::error_code ec;
    if (label_map.empty() && std::filesystem::is_regular_file(label_map_of(set), ec))
      check_label_map(label_map_of(set), source, map, out);
  }
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
  for (auto& warning : out.warnings)  // values quoted whole above (a backbone name, a checkpoint path)
    if (warning.size() > 400) warning = shorten(warning);
  return out;
}

void log_not_carried_over(const std::vector<std::string>& warnings, const std::string& source) {
  constexpr size_t kShown = 100;
  for (size_t i = 0; i < warnings.size(); ++i) {
    if (i < kShown) log::warn("{}: {}", source, warnings[i]);
    else log::debug("{}: {}", source, warnings[i]);
  }
  if (warnings.size() > kShown)
    log::warn("{}: ... and {} more fields not carried over (-v lists them)", source, warnings.size() - kShown);
}

}  // namespace mrcnn::config
