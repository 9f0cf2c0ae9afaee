#include "config/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>

#include "core/device.h"
#include "core/error.h"

namespace mrcnn::config {
namespace {

// The FPN of every backbone here has five output levels, P2-P6.
constexpr size_t kFpnLevels = 5;

// Problems listed in full (with did-you-mean suggestions); the rest are counted.
constexpr size_t kListedProblems = 20;
// Longest unknown key that gets a did-you-mean: suggestions cost its length times every key's.
constexpr size_t kLongestSuggestedKey = 64;

std::string shown(const Json& value) { return json_preview(value); }

bool within_bounds(const KeySpec& spec, double x) {
  if (!std::isfinite(x)) return false;
  if (spec.min && (spec.min_exclusive ? x <= *spec.min : x < *spec.min)) return false;
  if (spec.max && (spec.max_exclusive ? x >= *spec.max : x > *spec.max)) return false;
  return true;
}

// Integers beyond int64 (nlohmann keeps those up to 2^64 - 1 as unsigned) are out of range.
bool is_int(const Json& v) {
  return v.is_number_integer() &&
         !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

bool valid_number(const KeySpec& spec, const Json& v, bool integer) {
  if (integer ? !is_int(v) : !v.is_number()) return false;
  return within_bounds(spec, v.get<double>());
}

bool valid_list(const KeySpec& spec, const Json& v, bool integer) {
  if (!v.is_array()) return false;
  if (v.empty() && !spec.allow_empty) return false;
  if (spec.length >= 0 && v.size() != static_cast<size_t>(spec.length)) return false;
  return std::all_of(v.begin(), v.end(), [&](const Json& x) { return valid_number(spec, x, integer); });
}

bool is_choice(const KeySpec& spec, const Json& v) {
  return v.is_string() &&
         std::find(spec.choices.begin(), spec.choices.end(), v.get<std::string>()) != spec.choices.end();
}

void check_augmentations(const KeySpec& spec, const Json& value, std::vector<Problem>& problems);

// The first number of a well-typed value (of a list: of its elements) above the key's limit, or nullptr.
const Json* beyond_limit(const KeySpec& spec, const Json& value) {
  if (!spec.limit) return nullptr;
  if (value.is_number()) return value.get<double>() > *spec.limit ? &value : nullptr;
  if (value.is_array())
    for (const auto& x : value)
      if (const Json* found = beyond_limit(spec, x)) return found;
  return nullptr;
}

// Adds a problem when value doesn't fit spec; path is where it sits in the document.
void check_value(const KeySpec& spec, const Json& value, const std::string& path, std::vector<Problem>& problems) {
  bool ok = false;
  switch (spec.type) {
    case ValueType::Int: ok = valid_number(spec, value, true); break;
    case ValueType::Float: ok = valid_number(spec, value, false); break;
    case ValueType::Bool: ok = value.is_boolean(); break;
    case ValueType::String:
    case ValueType::Path: ok = value.is_string(); break;
    case ValueType::Device:
      ok = value.is_string();
      if (ok) {
        try {
          parse_device_spec(value.get<std::string>());
        } catch (const Error&) {
          ok = false;
        }
      }
      break;
    case ValueType::Choice: ok = is_choice(spec, value); break;
    case ValueType::IntList:
      ok = valid_list(spec, value, true) || (spec.scalar_as_list && valid_number(spec, value, true));
      break;
    case ValueType::FloatList: ok = valid_list(spec, value, false); break;
    case ValueType::ChoiceList: {
      ok = value.is_array() && !value.empty() &&
           std::all_of(value.begin(), value.end(), [&](const Json& x) { return is_choice(spec, x); });
      if (ok) {
        std::set<std::string> distinct;
        for (const auto& x : value) distinct.insert(x.get<std::string>());
        ok = distinct.size() == value.size();
      }
      break;
    }
    case ValueType::IntListList: {
      KeySpec inner = spec;
      inner.length = -1;
      inner.allow_empty = false;
      ok = value.is_array() && !value.empty() &&
           std::all_of(value.begin(), value.end(), [&](const Json& x) { return valid_list(inner, x, true); });
      break;
    }
    case ValueType::AugmentationList:
      if (!value.is_array()) break;
      check_augmentations(spec, value, problems);
      return;
  }
  if (!ok) problems.push_back({path, "expected " + describe_expected(spec) + ", found " + shown(value)});
  else if (const Json* big = beyond_limit(spec, value))
    problems.push_back({path, "expected " + describe_limit(spec) + " (the largest supported), found " + shown(*big)});
}

void check_augmentations(const KeySpec& spec, const Json& value, std::vector<Problem>& problems) {
  std::vector<std::string> known;
  for (const auto& aug : augmentation_schema()) known.push_back(aug.type);
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_path = spec.path + "[" + std::to_string(i) + "]";
    const Json& item = value[i];
    if (!item.is_object() || !item.contains("type") || !item["type"].is_string()) {
      problems.push_back({item_path, "expected an object with a \"type\" (" + describe_expected(spec) + "), found " +
                                         shown(item)});
      continue;
    }
    const std::string type = item["type"].get<std::string>();
    const AugmentationSpec* aug = find_augmentation(type);
    if (!aug) {
      std::string names;
      for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
      problems.push_back({item_path + ".type", "unknown augmentation '" + text_preview(type) + "', expected one of " +
                                                   names});
      continue;
    }
    for (const auto& [name, param_value] : item.items()) {
      if (name == "type") continue;
      const auto param = std::find_if(aug->params.begin(), aug->params.end(),
                                      [&](const KeySpec& p) { return p.path == name; });
      if (param == aug->params.end()) {
        std::string names;
        for (const auto& p : aug->params) names += (names.empty() ? "" : ", ") + p.path;
        problems.push_back({item_path + "." + name, "unknown parameter of " + type + ", expected one of " + names});
        continue;
      }
      check_value(*param, param_value, item_path + "." + name, problems);
    }
  }
}

std::vector<std::string> collect_paths() {
  std::vector<std::string> paths;
  std::set<std::string> sections;
  for (const auto& spec : schema()) {
    paths.push_back(spec.path);
    for (size_t dot = spec.path.find('.'); dot != std::string::npos; dot = spec.path.find('.', dot + 1))
      sections.insert(spec.path.substr(0, dot));
  }
  paths.insert(paths.end(), sections.begin(), sections.end());
  return paths;
}

// Every key and section path.
const std::vector<std::string>& all_paths() {
  static const std::vector<std::string> paths = collect_paths();
  return paths;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string last_segment(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

std::string parent_of(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

const Json* find_node(const Json& root, const std::string& path);

// The value of an integer key such as model.input_channels in doc: its default when absent or invalid.
long long integer_or_default(const Json& doc, const std::string& path) {
  const KeySpec& spec = *find_key(path);
  const Json* value = find_node(doc, path);
  std::vector<Problem> problems;
  if (value) check_value(spec, *value, path, problems);
  return value && problems.empty() ? value->get<long long>() : spec.default_value.get<long long>();
}

// check_value for a list whose length another key sets (image_mean: model.input_channels), naming it.
void check_sized_list(const KeySpec& spec, const Json& value, const std::string& path, const Json& root,
                      std::vector<Problem>& problems) {
  KeySpec sized = spec;
  const long long length = integer_or_default(root, spec.length_key);
  sized.length = static_cast<int>(length);
  const size_t before = problems.size();
  check_value(sized, value, path, problems);
  if (problems.size() > before)
    problems.back().message += " (" + spec.length_key + " is " + std::to_string(length) + ")";
}

void walk(const Json& node, const std::string& prefix, std::vector<Problem>& problems, const Json& root) {
  for (const auto& [name, value] : node.items()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (const KeySpec* spec = find_key(path)) {
      if (spec->length_key.empty())
        check_value(*spec, value, path, problems);
      else
        check_sized_list(*spec, value, path, root, problems);
    } else if (is_section(path)) {
      if (value.is_object())
        walk(value, path, problems, root);
      else
        problems.push_back({path, "expected an object (a section of keys), found " + shown(value)});
    } else {
      problems.push_back({path, "unknown key" + (problems.size() < kListedProblems ? did_you_mean(path) : "")});
    }
  }
}

// The model's mean and std (their defaults too) hold one value per band, and a data set's bands
// give the model its model.input_channels bands.
void check_band_layouts(const Json& resolved, std::vector<Problem>& problems) {
  for (const char* key : {"model.image_mean", "model.image_std"})
    check_sized_list(*find_key(key), *find_node(resolved, key), key, resolved, problems);
  const Json& channels = resolved["model"]["input_channels"];
  for (const char* set : {"train", "val"}) {
    const Json& bands = resolved["data"][set]["bands"];
    const bool inherits = bands.empty() && !resolved["data"]["train"]["bands"].empty() && set == std::string("val");
    if (bands.empty() && !inherits && !resolved["data"][set]["band_files"].get<std::string>().empty())
      problems.push_back({std::string("data.") + set + ".bands",
                          "is empty, but data." + std::string(set) + ".band_files is set: list the band numbers it "
                          "fills {band} with"});
    const std::string format = resolved["data"][set]["format"].get<std::string>();
    if (format != "coco" && format != "via" && format != "labelme" &&
        !resolved["data"][set]["band_files"].get<std::string>().empty())
      problems.push_back({std::string("data.") + set + ".band_files",
                          "is set for a " + format + " set, which finds its images itself (by file name, or "
                          "inside the records): store the bands in one multi-band TIFF, or list the images in "
                          "a coco, via or labelme set"});
    if (!bands.empty() && bands.size() != channels.get<size_t>())
      problems.push_back({std::string("data.") + set + ".bands",
                          shown(bands) + " selects " + std::to_string(bands.size()) +
                              " bands, but model.input_channels is " + shown(channels)});
  }
}

// Overlays draw three of the model's channels as RGB or one as gray.
void check_overlay_bands(const Json& resolved, std::vector<Problem>& problems) {
  const Json& view = resolved["infer"]["overlay_bands"];
  const long long channels = resolved["model"]["input_channels"].get<long long>();
  if (!view.empty() && view.size() != 1 && view.size() != 3)
    problems.push_back({"infer.overlay_bands", "expected 3 channels (R, G, B) or 1 (gray), found " + shown(view)});
  for (const auto& channel : view)
    if (channel.get<long long>() < 0 || channel.get<long long>() >= channels)
      problems.push_back({"infer.overlay_bands", "names channel " + shown(channel) + ", but model.input_channels is " +
                                                     std::to_string(channels) + " (channels 0-" +
                                                     std::to_string(channels - 1) + ")"});
}

// The TF OD API family's keys that only make a runnable model together (model.arch tf_faster_rcnn):
// found at load, not when the model is built or the first image runs.
void check_tf_family(const Json& model, std::vector<Problem>& problems) {
  const Json& tf = model["tf"];
  const std::string p = "model.tf.";
  if (tf["number_of_stages"].get<long long>() < 2)
    problems.push_back({p + "number_of_stages", "1 (proposals only) gives no detections: expected 2 (boxes) or 3 "
                                                "(boxes and masks)"});
  if (model["input_channels"].get<long long>() != 3)
    problems.push_back({"model.input_channels", shown(model["input_channels"]) + ": the TF OD API family (model.arch "
                                                "tf_faster_rcnn) takes RGB images (3)"});
  const Json& resizer = tf["resizer"];
  if (resizer["type"] == "keep_aspect_ratio" &&
      resizer["min_dimension"].get<long long>() > resizer["max_dimension"].get<long long>())
    problems.push_back({p + "resizer.min_dimension", shown(resizer["min_dimension"]) + " is above " + p +
                                                         "resizer.max_dimension " + shown(resizer["max_dimension"])});
  const long long kernel = tf["maxpool_kernel_size"].get<long long>();
  if (kernel > 0 && tf["maxpool_stride"].get<long long>() < 1)
    problems.push_back({p + "maxpool_stride", "0 with " + p + "maxpool_kernel_size " + std::to_string(kernel) +
                                                  " (a max pool needs a stride of at least 1)"});
  if (kernel > tf["initial_crop_size"].get<long long>())
    problems.push_back({p + "maxpool_kernel_size", std::to_string(kernel) + " is larger than " + p +
                                                       "initial_crop_size " + shown(tf["initial_crop_size"])});
}

// What the TF OD API family does not run, asked of inference in the same file: found at load.
void check_tf_family_inference(const Json& infer, std::vector<Problem>& problems) {
  const std::string precision = infer["precision"].get<std::string>();
  if (precision == "bf16" || precision == "fp16")
    problems.push_back({"infer.precision", precision + ": the TF OD API family (model.arch tf_faster_rcnn) runs in "
                                           "fp32 only (auto chooses fp32 for it)"});
  if (infer["tile"]["size"].get<long long>() > 0)
    problems.push_back({"infer.tile.size", shown(infer["tile"]["size"]) + ": the TF OD API family (model.arch "
                                           "tf_faster_rcnn) does not run tiles (expected 0)"});
}

// Checks between keys; resolved holds every key with a value of the right type.
void check_consistency(const Json& resolved, std::vector<Problem>& problems) {
  const Json& model = resolved["model"];
  if (model["arch"] == "tf_faster_rcnn") {
    check_tf_family(model, problems);
    check_tf_family_inference(resolved["infer"], problems);
  }
  const Json& sizes = model["anchor"]["sizes"];
  if (sizes.size() != kFpnLevels) {
    problems.push_back({"model.anchor.sizes", "has " + std::to_string(sizes.size()) + " levels, expected " +
                                                  std::to_string(kFpnLevels) + " (one per FPN level P2-P6)"});
  } else {
    std::string counts;
    bool same = true;
    for (const auto& level : sizes) {
      counts += (counts.empty() ? "" : ", ") + std::to_string(level.size());
      same = same && level.size() == sizes[0].size();
    }
    if (!same)
      problems.push_back({"model.anchor.sizes", "every level needs the same number of sizes (the RPN head predicts "
                                                "as many anchors at every location), found " + counts});
  }
  const long long max_size = model["max_size"].get<long long>();
  for (const auto& min_size : model["min_size"])
    if (min_size.get<long long>() > max_size)
      problems.push_back({"model.min_size", std::to_string(min_size.get<long long>()) +
                                                " is larger than model.max_size (" + std::to_string(max_size) + ")"});
  for (const char* stage : {"rpn", "roi"}) {
    const double fg = model[stage]["fg_iou_thresh"].get<double>();
    const double bg = model[stage]["bg_iou_thresh"].get<double>();
    if (bg > fg)
      problems.push_back({std::string("model.") + stage + ".bg_iou_thresh",
                          shown(model[stage]["bg_iou_thresh"]) + " is above fg_iou_thresh (" +
                              shown(model[stage]["fg_iou_thresh"]) + ")"});
  }
  if (model["mask"]["resolution"].get<long long>() % 2 != 0)
    problems.push_back({"model.mask.resolution", "expected an even number (the mask head upsamples 2x), found " +
                                                     shown(model["mask"]["resolution"])});
  if (model["mask"]["bce_weight"].get<double>() == 0 && model["mask"]["dice_weight"].get<double>() == 0)
    problems.push_back({"model.mask", "bce_weight and dice_weight are both 0: the mask head would never learn"});

  const Json& data = resolved["data"];
  check_band_layouts(resolved, problems);
  check_overlay_bands(resolved, problems);
  if (data["val_fraction"].get<double>() > 0 && !data["val"]["annotations"].get<std::string>().empty())
    problems.push_back({"data.val_fraction", "set it to 0 or leave data.val.annotations empty: both name a "
                                             "validation set"});
  for (size_t i = 0; i < data["augmentation"].size(); ++i) {
    const Json& aug = data["augmentation"][i];
    if (aug["type"] == "random_crop" && aug["min_scale"].get<double>() > aug["max_scale"].get<double>())
      problems.push_back({"data.augmentation[" + std::to_string(i) + "].min_scale",
                          shown(aug["min_scale"]) + " is above max_scale (" + shown(aug["max_scale"]) + ")"});
  }

  const Json& train = resolved["train"];
  const long long steps = train["steps"].get<long long>();
  const long long epochs = train["epochs"].get<long long>();
  if (steps > 0 && epochs > 0)
    problems.push_back({"train", "train.steps (" + std::to_string(steps) + ") and train.epochs (" +
                                     std::to_string(epochs) + ") are both set: set the other one to 0"});
  if (steps == 0 && epochs == 0)
    problems.push_back({"train", "train.steps and train.epochs are both 0: set one of them"});
  const Json& schedule = train["lr_schedule"];
  const Json& milestones = schedule["milestones"];
  for (size_t i = 1; i < milestones.size(); ++i)
    if (milestones[i].get<long long>() <= milestones[i - 1].get<long long>())
      problems.push_back({"train.lr_schedule.milestones", "expected increasing values, found " + shown(milestones)});
  const long long run_length = steps > 0 ? steps : epochs;
  const std::string unit = steps > 0 ? "train.steps" : "train.epochs";
  if (schedule["type"] == "multistep" && run_length > 0 && !milestones.empty() &&
      milestones.back().get<long long>() >= run_length)
    problems.push_back({"train.lr_schedule.milestones", shown(milestones.back()) + " is not before the end of the run (" +
                                                            unit + " = " + std::to_string(run_length) + ")"});
  if (steps > 0 && schedule["warmup_steps"].get<long long>() > steps)
    problems.push_back({"train.lr_schedule.warmup_steps", shown(schedule["warmup_steps"]) +
                                                              " is longer than the run (train.steps = " +
                                                              std::to_string(steps) + ")"});
}

void merge_into(Json& target, const Json& overrides, const std::string& prefix) {
  for (const auto& [name, value] : overrides.items()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (value.is_object() && is_section(path) && target.contains(name) && target[name].is_object())
      merge_into(target[name], value, path);
    else
      target[name] = value;
  }
}

Json& node_at(Json& root, const std::string& path) {
  Json* node = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) *node = Json::object();
    node = &(*node)[name];
    if (dot == std::string::npos) return *node;
    start = dot + 1;
  }
}

const Json* find_node(const Json& root, const std::string& path) {
  const Json* node = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(name)) return nullptr;
    node = &(*node)[name];
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

void flatten(const Json& node, const std::string& prefix, std::vector<std::pair<std::string, Json>>& out) {
  if (node.is_object() && (prefix.empty() || is_section(prefix))) {
    for (const auto& [name, value] : node.items()) flatten(value, prefix.empty() ? name : prefix + "." + name, out);
  } else {
    out.emplace_back(prefix, node);
  }
}

Error unknown_key(const std::string& path) { return Error(text_preview(path) + ": unknown key" + did_you_mean(path)); }

// Command-line text as JSON (with the limits of every JSON input), or null when it isn't JSON.
Json json_or_null(const std::string& text) {
  try {
    return parse_json(text, "value");
  } catch (const Error&) {
    return Json();
  }
}

}  // namespace

Json load_config_file(const std::string& path) {
  Json doc = read_json_file(path);
  if (!doc.is_object()) throw Error(path + ": expected a JSON object of configuration sections, found " + shown(doc));
  return doc;
}

std::vector<Problem> validate(const Json& doc) {
  std::vector<Problem> problems;
  if (!doc.is_object()) {
    problems.push_back({"", "expected a JSON object of configuration sections, found " + shown(doc)});
    return problems;
  }
  walk(doc, "", problems, doc);
  if (problems.empty()) check_consistency(resolve(doc), problems);
  return problems;
}

void require_valid(const Json& doc, const std::string& source) {
  const auto problems = validate(doc);
  if (problems.empty()) return;
  std::string message;
  for (size_t i = 0; i < std::min(problems.size(), kListedProblems); ++i)
    message += (message.empty() ? "" : "\n") + source + ": " + problems[i].str();
  if (problems.size() > kListedProblems)
    message += "\n" + source + ": ... and " + std::to_string(problems.size() - kListedProblems) + " more problems";
  throw Error(message);
}

Json resolve(const Json& doc) {
  Json resolved = Json::object();
  for (const auto& spec : schema()) node_at(resolved, spec.path) = spec.default_value;
  merge_into(resolved, doc, "");
  for (const auto& spec : schema()) {
    Json& value = node_at(resolved, spec.path);
    if (spec.scalar_as_list && value.is_number()) value = Json::array({value});
    if (spec.type == ValueType::AugmentationList && value.is_array()) {
      for (auto& item : value) {
        const AugmentationSpec* aug = item.is_object() && item.contains("type") && item["type"].is_string()
                                          ? find_augmentation(item["type"].get<std::string>())
                                          : nullptr;
        if (!aug) continue;
        Json filled = Json::object({{"type", aug->type}});
        for (const auto& param : aug->params) filled[param.path] = item.value(param.path, param.default_value);
        item = filled;
      }
    }
  }
  return resolved;
}

Json load_resolved(const std::string& path) {
  const Json doc = load_config_file(path);
  require_valid(doc, path);
  return resolve(doc);
}

Json get_value(const Json& resolved, const std::string& path) {
  if (!find_key(path) && !is_section(path)) throw unknown_key(path);
  const Json* node = find_node(resolved, path);
  if (!node) throw unknown_key(path);
  return *node;
}

Json parse_value(const std::string& path, const std::string& text) {
  const KeySpec* spec = find_key(path);
  if (!spec) {
    if (!is_section(path)) throw unknown_key(path);
    Json value = json_or_null(text);
    if (!value.is_object())
      throw Error(path + ": expected a JSON object for this section, got '" + text_preview(text) + "'");
    return value;
  }
  const auto bad = [&] {
    return Error(path + ": expected " + describe_expected(*spec) + ", got '" + text_preview(text) + "'");
  };
  Json value;
  switch (spec->type) {
    case ValueType::Int: {
      long long x = 0;
      const char* end = text.data() + text.size();
      const auto result = std::from_chars(text.data(), end, x);
      if (text.empty() || result.ec != std::errc() || result.ptr != end) throw bad();
      value = x;
      break;
    }
    case ValueType::Float: {
      char* end = nullptr;
      const double x = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(x)) throw bad();
      value = x;
      break;
    }
    case ValueType::Bool:
      if (text == "true") value = true;
      else if (text == "false") value = false;
      else throw bad();
      break;
    case ValueType::String:
    case ValueType::Path:
    case ValueType::Device:
    case ValueType::Choice:
      if (!text.empty() && text.front() == '"') {
        value = json_or_null(text);
        if (value.is_null()) throw bad();
      } else {
        value = text;
      }
      break;
    default:
      value = json_or_null(text);
      if (value.is_null())
        throw Error(path + ": expected " + describe_expected(*spec) + " in JSON syntax (e.g. [1, 2]), got '" +
                    text_preview(text) + "'");
  }
  std::vector<Problem> problems;
  check_value(*spec, value, path, problems);
  if (!problems.empty()) throw Error(problems.front().str());
  return value;
}

void set_value(Json& doc, const std::string& path, const Json& value) { node_at(doc, path) = value; }

void apply_assignments(Json& doc, const std::vector<std::string>& assignments, const std::string& source) {
  for (const auto& assignment : assignments) {
    const auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(source + ": expected key.path=value, got '" + assignment + "'");
    const std::string path = assignment.substr(0, eq);
    try {
      set_value(doc, path, parse_value(path, assignment.substr(eq + 1)));
    } catch (const Error& e) {
      throw Error(source + ": " + e.what());
    }
  }
}

std::vector<std::string> missing_paths(const Json& resolved) {
  std::vector<std::string> lines;
  for (const auto& spec : schema()) {
    if (spec.type != ValueType::Path) continue;
    const std::string value = get_value(resolved, spec.path).get<std::string>();
    std::error_code ec;
    if (!value.empty() && !std::filesystem::exists(value, ec))
      lines.push_back(spec.path + ": '" + value + "' does not exist (relative paths are taken from the working "
                      "directory)");
  }
  return lines;
}

std::vector<Difference> diff(const Json& resolved_a, const Json& resolved_b) {
  std::vector<std::pair<std::string, Json>> a, b;
  flatten(resolved_a, "", a);
  flatten(resolved_b, "", b);
  std::vector<Difference> differences;
  for (const auto& [key, value] : a) {
    const auto other = std::find_if(b.begin(), b.end(), [&](const auto& kv) { return kv.first == key; });
    const Json b_value = other == b.end() ? Json() : other->second;
    if (value != b_value) differences.push_back({key, value, b_value});
  }
  for (const auto& [key, value] : b)
    if (std::none_of(a.begin(), a.end(), [&](const auto& kv) { return kv.first == key; }))
      differences.push_back({key, Json(), value});
  return differences;
}

std::string did_you_mean(const std::string& unknown_path) {
  if (unknown_path.size() > kLongestSuggestedKey) return "";
  const std::string leaf = last_segment(unknown_path);
  const std::string parent = parent_of(unknown_path);
  size_t best = std::string::npos;
  std::vector<std::string> best_paths;
  for (const auto& candidate : all_paths()) {
    // A misspelt name in the right section, or the right name in the wrong section.
    const size_t by_path = edit_distance(unknown_path, candidate);
    const size_t by_leaf = edit_distance(leaf, last_segment(candidate)) + (parent_of(candidate) == parent ? 0 : 1);
    const size_t score = std::min(by_path, by_leaf);
    if (score < best) {
      best = score;
      best_paths = {candidate};
    } else if (score == best) {
      best_paths.push_back(candidate);
    }
  }
  const size_t limit = std::max<size_t>(2, leaf.size() / 3);
  if (best_paths.empty() || best > limit) return "";
  std::string text = " (did you mean '" + best_paths[0] + "'";
  if (best_paths.size() > 1) text += " or '" + best_paths[1] + "'";
  return text + "?)";
}

std::string format_value(const Json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

}  // namespace mrcnn::config
