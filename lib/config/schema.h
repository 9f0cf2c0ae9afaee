// The one table of experiment configuration keys: each key's type, default, valid range and
// meaning. Validation, `mrcnn-config show/keys`, the docs and the presets all come from it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::config {

enum class ValueType {
  Int,
  Float,
  Bool,
  String,
  Path,              // a file or folder; relative paths are taken from the working directory
  Device,            // auto | cpu | cuda | cuda:N
  Choice,            // one of `choices`
  IntList,
  FloatList,
  ChoiceList,        // a list of distinct `choices`
  IntListList,       // e.g. anchor sizes per FPN level
  AugmentationList,  // [{"type": "horizontal_flip", "prob": 0.5}, ...]
};

struct KeySpec {
  std::string path;  // "model.rpn.nms_thresh"
  ValueType type = ValueType::String;
  Json default_value;
  std::string help;
  // Numeric bounds; for lists they apply to every element.
  std::optional<double> min, max;
  bool min_exclusive = false;
  bool max_exclusive = false;
  // The largest value supported, for sizes, counts and periods: generous for real use, far below
  // where arithmetic on the value overflows. Checked apart from min/max, with its own message.
  std::optional<double> limit;
  std::vector<std::string> choices;
  int length = -1;              // exact list length; -1: any length
  std::string length_key;       // lists: the length is this integer key's value (model.input_channels)
  bool allow_empty = false;     // lists: [] is valid
  bool scalar_as_list = false;  // a single number is accepted and stored as a one-element list

  KeySpec& range(double lo, double hi) { min = lo; max = hi; return *this; }
  KeySpec& at_least(double lo) { min = lo; return *this; }
  KeySpec& above(double lo) { min = lo; min_exclusive = true; return *this; }
  KeySpec& at_most(double hi) { limit = hi; return *this; }
  KeySpec& below(double hi) { max = hi; max_exclusive = true; return *this; }
  KeySpec& of_length(int n) { length = n; return *this; }
  KeySpec& of_length_from(std::string key) { length_key = std::move(key); return *this; }
  KeySpec& may_be_empty() { allow_empty = true; return *this; }
};

// One data augmentation and its parameters (each parameter's path is just its name).
struct AugmentationSpec {
  std::string type;
  std::string help;
  std::vector<KeySpec> params;
};

// Every key, in the order `show` prints them.
const std::vector<KeySpec>& schema();
const std::vector<AugmentationSpec>& augmentation_schema();

// The key at path, or nullptr.
const KeySpec* find_key(const std::string& path);
const AugmentationSpec* find_augmentation(const std::string& type);

// True for a path that groups keys ("model", "model.rpn", "data.train").
bool is_section(const std::string& path);

// What a valid value looks like, for error messages: "an integer >= 2", "one of sgd, adamw".
std::string describe_expected(const KeySpec& spec);
// "at most 4096" for a key with a limit, else "".
std::string describe_limit(const KeySpec& spec);
std::string type_name(ValueType type);

// Every key with its type, default and meaning: plain text, or the Markdown table of
// docs/config-keys.md.
std::string key_reference(bool markdown);

}  // namespace mrcnn::config
