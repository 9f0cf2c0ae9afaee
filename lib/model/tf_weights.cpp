#include "model/tf_weights.h"

#include <torch/torch.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "core/error.h"
#include "io/tf_object_graph.h"
#include "model/inception_resnet_v2.h"

namespace mrcnn::model {

at::Tensor tf_tensor_to_torch(const tf::Tensor& tensor, const std::string& key) {
  static const std::map<int, at::ScalarType> kTypes = {
      {tf::kFloat, at::kFloat}, {tf::kHalf, at::kHalf},   {tf::kBfloat16, at::kBFloat16}, {tf::kDouble, at::kDouble},
      {tf::kInt32, at::kInt},   {tf::kInt64, at::kLong},  {tf::kBool, at::kBool},         {tf::kUint8, at::kByte},
      {tf::kInt8, at::kChar},   {tf::kInt16, at::kShort}};
  const auto type = kTypes.find(tensor.dtype);
  if (type == kTypes.end())
    throw Error("tensor '" + key + "': " + tf::dtype_name(tensor.dtype) + " has no libtorch tensor here");
  at::Tensor out = torch::empty(tensor.shape, torch::TensorOptions().dtype(type->second));
  const size_t bytes = static_cast<size_t>(out.numel()) * out.element_size();
  if (bytes != tensor.bytes.size())
    throw Error("tensor '" + key + "': " + std::to_string(tensor.bytes.size()) + " bytes for a shape needing " +
                std::to_string(bytes));
  if (bytes) std::memcpy(out.data_ptr(), tensor.bytes.data(), bytes);  // TF stores little-endian, as this host
  return out;
}

namespace {

constexpr const char* kValueSuffix = "/.ATTRIBUTES/VARIABLE_VALUE";

// A Keras auto-named layer ("conv2d_17") as its class name and per-model counter (none = 0).
struct CountedLayer {
  std::string base;
  int number = 0;
};

std::optional<CountedLayer> counted_layer(const std::string& layer) {
  static const std::regex kCounted("^(conv2d|freezable_batch_norm|batch_normalization)(?:_([0-9]{1,6}))?$");
  std::smatch m;
  if (!std::regex_match(layer, m, kCounted)) return std::nullopt;
  return CountedLayer{m[1].str(), m[2].matched ? std::stoi(m[2].str()) : 0};
}

std::string counted_name(const std::string& base, int number) {
  return number == 0 ? base : base + "_" + std::to_string(number);
}

// The feature extractor's variables in the checkpoint: full name (layer/weight) → key.
std::map<std::string, std::string> extractor_variables(const tf::Checkpoint& checkpoint) {
  const auto graph = tf::describe_checkpoint(checkpoint);
  if (graph.empty())
    throw Error(checkpoint.prefix + ".index: no object graph (" + tf::kObjectGraphKey +
                "): not a TF2 OD API checkpoint, its Keras layer names are unknown");
  std::map<std::string, std::string> by_name;
  for (const auto& [key, value] : graph) {
    const bool variable = key.size() > std::strlen(kValueSuffix) &&
                          key.compare(key.size() - std::strlen(kValueSuffix), std::string::npos, kValueSuffix) == 0;
    if (!variable || key.find("/.OPTIMIZER_SLOT/") != std::string::npos) continue;
    if (value.object_path.find("_feature_extractor_for_") == std::string::npos) continue;
    if (value.full_name.empty() || !by_name.emplace(value.full_name, key).second)
      throw Error(checkpoint.prefix + ".index: feature extractor variable '" + key +
                  "' has no unique name in the object graph");
  }
  if (by_name.empty())
    throw Error(checkpoint.prefix + ".index: no _feature_extractor_for_* variables: not a TF OD API Faster/Mask R-CNN");
  return by_name;
}

// The smallest counter of the layers of class `base` (the model's first such layer); none when the
// checkpoint has no such layer (another network: every variable is then reported missing).
std::optional<int> first_number(const std::map<std::string, std::string>& variables, const std::string& base) {
  std::optional<int> first;
  for (const auto& [name, key] : variables) {
    const auto layer = counted_layer(name.substr(0, name.find('/')));
    if (layer && layer->base == base) first = std::min(first.value_or(layer->number), layer->number);
  }
  return first;
}

std::string last_component(const std::string& name) { return name.substr(name.rfind('.') + 1); }

// Our parameters with the Keras variables they take, walking both stages in the order the Keras
// code creates the layers (branch by branch, stem to conv_7b), conv2d_bn units numbered from the
// checkpoint's first conv2d / norm.
std::vector<std::pair<std::string, std::string>> expected_variables(const torch::nn::Module& first_stage,
                                                                    const torch::nn::Module& second_stage,
                                                                    const std::string& norm_base, int conv_first,
                                                                    int norm_first) {
  std::vector<std::pair<std::string, std::string>> rows;
  int unit = 0;
  auto add_unit = [&](const std::string& ours, const std::string& conv, const std::string& norm) {
    rows.push_back({ours + ".weight", conv + "/kernel"});
    for (const char* w : {"beta", "moving_mean", "moving_variance"}) rows.push_back({ours + "." + w, norm + "/" + w});
  };
  for (const auto* stage : {&first_stage, &second_stage}) {
    const std::string prefix = stage == &first_stage ? "first_stage" : "second_stage";
    for (const auto& item : stage->named_modules(prefix)) {
      const std::string& name = item.key();
      if (dynamic_cast<const InceptionResnetBlockImpl*>(item.value().get())) {
        rows.push_back({name + ".conv_weight", last_component(name) + "_conv/kernel"});
        rows.push_back({name + ".conv_bias", last_component(name) + "_conv/bias"});
      } else if (dynamic_cast<const TfConvBnImpl*>(item.value().get())) {
        if (last_component(name) == "conv_7b") {
          add_unit(name, "conv_7b", "conv_7b_bn");
        } else {
          add_unit(name, counted_name("conv2d", conv_first + unit), counted_name(norm_base, norm_first + unit));
          ++unit;
        }
      }
    }
  }
  return rows;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

std::vector<TfVariableMapping> inception_resnet_v2_variable_map(const tf::Checkpoint& checkpoint,
                                                                const InceptionResnetV2FirstStageImpl& first_stage,
                                                                const InceptionResnetV2SecondStageImpl& second_stage) {
  const auto variables = extractor_variables(checkpoint);
  const std::string norm_base =
      first_number(variables, "freezable_batch_norm") ? "freezable_batch_norm" : "batch_normalization";
  const auto rows = expected_variables(first_stage, second_stage, norm_base,
                                       first_number(variables, "conv2d").value_or(0),
                                       first_number(variables, norm_base).value_or(0));
  std::vector<TfVariableMapping> map;
  std::vector<std::string> missing;
  std::set<std::string> used;
  for (const auto& [parameter, variable] : rows) {
    const auto found = variables.find(variable);
    if (found == variables.end()) {
      missing.push_back(variable + " (for " + parameter + ")");
      continue;
    }
    used.insert(variable);
    map.push_back({parameter, variable, found->second});
  }
  std::vector<std::string> unmapped;
  for (const auto& [name, key] : variables)
    if (!used.count(name)) unmapped.push_back(name + " (" + key + ")");
  if (!missing.empty() || !unmapped.empty())
    throw Error(checkpoint.prefix + ": not the TF OD API's Inception-ResNet-v2 feature extractor: " +
                std::to_string(missing.size()) + " variable(s) missing: [" + joined(missing) + "]; " +
                std::to_string(unmapped.size()) + " unmapped: [" + joined(unmapped) + "]");
  return map;
}

namespace {

// Our tensor (parameter or buffer) by its prefixed name.
std::map<std::string, at::Tensor> own_tensors(const torch::nn::Module& module, const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : module.named_parameters()) out[prefix + "." + item.key()] = item.value();
  for (const auto& item : module.named_buffers()) out[prefix + "." + item.key()] = item.value();
  return out;
}

std::string shape_text(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

void load_inception_resnet_v2_from_tf(const std::string& path, InceptionResnetV2FirstStageImpl& first_stage,
                                      InceptionResnetV2SecondStageImpl& second_stage) {
  const tf::Checkpoint checkpoint = tf::open_checkpoint(path);
  auto ours = own_tensors(first_stage, "first_stage");
  ours.merge(own_tensors(second_stage, "second_stage"));
  std::map<std::string, const tf::TensorEntry*> entries;
  for (const auto& entry : checkpoint.entries) entries[entry.key] = &entry;
  std::vector<std::string> mismatched;
  torch::NoGradGuard no_grad;
  for (const auto& row : inception_resnet_v2_variable_map(checkpoint, first_stage, second_stage)) {
    const auto entry = entries.find(row.key);
    if (entry == entries.end())
      throw Error(checkpoint.prefix + ".index: the object graph names '" + row.key + "' (" + row.variable +
                  "), which the checkpoint does not hold");
    at::Tensor value = tf_tensor_to_torch(tf::read_tensor(checkpoint, *entry->second), row.key);
    if (!value.is_floating_point())
      throw Error(checkpoint.prefix + ": " + row.variable + " holds " + std::string(c10::toString(value.scalar_type())) +
                  " values, floating point expected");
    if (value.dim() == 4) value = value.permute({3, 2, 0, 1});  // Keras kernels are HWIO, ours OIHW
    at::Tensor& target = ours.at(row.parameter);
    if (value.sizes() != target.sizes()) {
      mismatched.push_back(row.variable + " " + shape_text(value.sizes()) + " for " + row.parameter + " " +
                           shape_text(target.sizes()));
      continue;
    }
    target.copy_(value);
  }
  if (!mismatched.empty())
    throw Error(checkpoint.prefix + ": " + std::to_string(mismatched.size()) +
                " Inception-ResNet-v2 variable(s) of the wrong shape (HWIO kernels shown as OIHW): " +
                joined(mismatched));
}

}  // namespace mrcnn::model
