#include "model/tfod_weights.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "core/error.h"
#include "io/tf_checkpoint.h"
#include "io/tf_object_graph.h"
#include "io/weights_file.h"
#include "core/log.h"
#include "model/tf_weights.h"
#include "model/tfod_mask_rcnn.h"
#include "model/weights.h"

namespace mrcnn::model {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The meta-architecture's head variables (its attributes _first_stage_box_predictor*,
// _mask_rcnn_box_predictor, whatever object holds the model: `model/` in a training checkpoint,
// another name in an exported SavedModel): Keras full name -> checkpoint key.
std::map<std::string, std::string> head_variables(const tf::Checkpoint& checkpoint) {
  std::map<std::string, std::string> by_name;
  for (const auto& [key, value] : tf::describe_checkpoint(checkpoint)) {
    if (!ends_with(key, "/.ATTRIBUTES/VARIABLE_VALUE") || key.find("/.OPTIMIZER_SLOT/") != std::string::npos) continue;
    const std::string& path = value.object_path;
    if (path.find("/_first_stage_box_predictor") == std::string::npos &&
        path.find("/_mask_rcnn_box_predictor/") == std::string::npos)
      continue;
    by_name[value.full_name.empty() ? value.object_path : value.full_name] = key;
  }
  return by_name;
}

// Our head parameters and the Keras layer each takes (the end of the variable's name; the layer
// names are fixed in the OD API's code, the scopes above them may carry Keras' counters).
std::vector<std::pair<std::string, std::string>> expected_layers(const TfodMaskRcnnImpl& model) {
  std::vector<std::pair<std::string, std::string>> layers = {
      {"rpn_conv", "RPNConv"},
      {"rpn_box", "ConvolutionalBoxHead_0/BoxEncodingPredictor"},
      {"rpn_class", "ConvolutionalClassHead_0/ClassPredictor"},
      {"box", "BoxEncodingPredictor_dense"},
      {"class", "ClassPredictor_dense"}};
  const int64_t convs = model.mask_conv_layers();
  for (int64_t i = 0; i + 1 < convs; ++i)
    layers.push_back({"mask_conv_" + std::to_string(i), "MaskPredictor_conv2d_" + std::to_string(i)});
  if (convs > 0) layers.push_back({"mask_last", "MaskPredictor_last_conv2d"});
  return layers;
}

// The first few items, so that the error stays one readable line (each names a long variable).
std::string joined(const std::vector<std::string>& items) {
  constexpr size_t kShown = 4;
  std::string out;
  for (size_t i = 0; i < items.size() && i < kShown; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > kShown) out += ", ... (" + std::to_string(items.size()) + " in all)";
  return out;
}

std::string shape_text(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// A Keras kernel in our layout: conv HWIO -> OIHW, dense (in, out) -> (out, in).
at::Tensor to_our_layout(const at::Tensor& value) {
  if (value.dim() == 4) return value.permute({3, 2, 0, 1});
  if (value.dim() == 2) return value.t();
  return value;
}

// The one variable whose name ends in /layer/weight (or is layer/weight).
const std::string* find_variable(const std::map<std::string, std::string>& variables, const std::string& name) {
  const std::string* found = nullptr;
  for (const auto& [variable, key] : variables)
    if (variable == name || ends_with(variable, "/" + name)) {
      if (found) return nullptr;
      found = &variable;
    }
  return found;
}

// A regular file that is neither a checkpoint's .index nor one of its data shards: our weights.
bool is_weights_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  const std::string name = std::filesystem::path(path).filename().string();  // folders may hold ".data-"
  return !ends_with(name, ".index") && name.find(".data-") == std::string::npos;
}

}  // namespace

void load_tfod_weights(TfodMaskRcnnImpl& model, const std::string& path, bool allow_partial) {
  if (!is_weights_file(path)) {
    if (allow_partial) log::warn("{}: --allow-partial does not apply to a TF checkpoint (it loads whole or not at all)", path);
    return load_tfod_mask_rcnn_from_tf(path, model);
  }
  warn_if_partial(load_state_dict(model, read_weights_file(path), allow_partial, path), path);
}

namespace {

// What loading the heads found: the Keras variables missing or of another shape, those no head
// took, and our parameters left at their values (missing or of another shape).
struct HeadLoad {
  std::vector<std::string> missing, unmapped, mismatched, left;
};

// Copies every head variable of the checkpoint whose shape fits into `model`.
HeadLoad load_heads(const tf::Checkpoint& checkpoint, TfodMaskRcnnImpl& model) {
  const auto variables = head_variables(checkpoint);
  std::map<std::string, const tf::TensorEntry*> entries;
  for (const auto& entry : checkpoint.entries) entries[entry.key] = &entry;
  auto ours = model.named_parameters(/*recurse=*/false);
  HeadLoad out;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  bool kernel_fits = true;
  for (const auto& [prefix, layer] : expected_layers(model))
    for (const char* weight : {"weight", "bias"}) {
      const bool is_kernel = std::string(weight) == "weight";
      if (is_kernel) kernel_fits = true;
      const std::string parameter = prefix + "_" + weight;
      const std::string name = layer + (is_kernel ? "/kernel" : "/bias");
      const std::string* variable = find_variable(variables, name);
      if (!variable) {
        out.missing.push_back(name + " (for " + parameter + ")");
        out.left.push_back(parameter);
        continue;
      }
      used.insert(*variable);
      const std::string& key = variables.at(*variable);
      const at::Tensor value = to_our_layout(tf_tensor_to_torch(tf::read_tensor(checkpoint, *entries.at(key)), key));
      at::Tensor& target = ours[parameter];
      if (value.sizes() == target.sizes()) {
        target.copy_(value);
        continue;
      }
      out.left.push_back(parameter);
      if (is_kernel || kernel_fits)  // a bias goes with its kernel's mismatch
        out.mismatched.push_back(*variable + " " + shape_text(value.sizes()) + " for " + parameter + " " +
                                 shape_text(target.sizes()));
      if (is_kernel) kernel_fits = false;
    }
  for (const auto& [name, key] : variables)
    if (!used.count(name)) out.unmapped.push_back(name + " (" + key + ")");
  return out;
}

}  // namespace

void load_tfod_mask_rcnn_from_tf(const std::string& path, TfodMaskRcnnImpl& model) {
  load_inception_resnet_v2_from_tf(path, *model.extractor(), *model.box_extractor());
  const tf::Checkpoint checkpoint = tf::open_checkpoint(path);
  const HeadLoad heads = load_heads(checkpoint, model);
  if (!heads.missing.empty() || !heads.unmapped.empty() || !heads.mismatched.empty())
    throw Error(checkpoint.prefix + ": the heads do not match the configured TF OD API model: " +
                std::to_string(heads.missing.size()) + " variable(s) missing: [" + joined(heads.missing) + "]; " +
                std::to_string(heads.unmapped.size()) + " unmapped: [" + joined(heads.unmapped) + "]; " +
                std::to_string(heads.mismatched.size()) +
                " of the wrong shape (kernels in our layout; biases with them): [" + joined(heads.mismatched) + "]");
}

bool tfod_is_weights_file(const std::string& path) { return is_weights_file(path); }

std::vector<std::string> load_tfod_heads_that_fit(const std::string& path, TfodMaskRcnnImpl& model) {
  const tf::Checkpoint checkpoint = tf::open_checkpoint(path);
  return load_heads(checkpoint, model).left;
}

}  // namespace mrcnn::model
