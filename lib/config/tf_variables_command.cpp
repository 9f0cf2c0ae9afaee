#include "config/tf_variables_command.h"

#include <iostream>
#include <map>
#include <ostream>

#include "core/log.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/tf_checkpoint.h"
#include "io/tf_object_graph.h"

namespace mrcnn::config {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

// How many tensors carry each variable name: TF2 code often leaves names at "Variable".
std::map<std::string, int> name_counts(const std::map<std::string, tf::TrackedValue>& graph) {
  std::map<std::string, int> counts;
  for (const auto& [key, value] : graph) ++counts[value.full_name];
  return counts;
}

// One listed tensor, named by the variable's own name when it is unique in the checkpoint (Keras
// layer names), else by its object path (plain tf.Module attributes); TF1 keys are names already.
Json describe(const tf::TensorEntry& entry, const std::map<std::string, tf::TrackedValue>& graph,
              const std::map<std::string, int>& counts) {
  // A partitioned variable's entry stores no bytes itself: its size is that of the whole tensor.
  const uint64_t bytes = entry.partitioned ? entry.elements * tf::dtype_width(entry.dtype) : entry.size;
  Json row = {{"key", entry.key}, {"dtype", tf::dtype_name(entry.dtype)}, {"shape", entry.shape}, {"bytes", bytes}};
  const auto found = graph.find(entry.key);
  if (found == graph.end()) {
    row["name"] = row["path"] = entry.key;
  } else {
    const tf::TrackedValue& value = found->second;
    const bool unique = !value.full_name.empty() && counts.at(value.full_name) == 1;
    row["name"] = unique ? value.full_name : value.object_path;
    row["path"] = value.object_path;
  }
  if (entry.partitioned) row["partitioned"] = true;
  return row;
}

}  // namespace

std::pair<CLI::App*, std::function<int()>> add_tf_variables_command(CLI::App& app) {
  auto command = std::make_shared<TfVariablesCommand>();
  CLI::App* sub = app.add_subcommand(
      "tf-variables",
      "List the tensors of a TensorFlow checkpoint or SavedModel (as tf.train.list_variables; no TensorFlow "
      "needed): name, dtype, shape, bytes; every tensor is read and its CRC-32C checked");
  sub->add_option("checkpoint", command->checkpoint,
                  "Checkpoint prefix (ckpt-1), its .index file, a SavedModel folder, or a folder with a `checkpoint` file")
      ->required();
  sub->add_option("--json", command->json, "Also write the list as JSON: {checkpoint, shards, tensors: [{name, path, key, "
                                           "dtype, shape, bytes}]}");
  sub->footer(
      "Examples:\n"
      "  mrcnn-config tf-variables training/ckpt-1\n"
      "  mrcnn-config tf-variables training/      (the latest checkpoint TF's `checkpoint` file names)\n"
      "  mrcnn-config tf-variables exported_model/saved_model --json variables.json\n"
      "  mrcnn-config tf-variables model.ckpt.index   (a TF1 tf.compat.v1.train.Saver checkpoint)");
  return {sub, [command] { return run_tf_variables_command(*command, std::cout); }};
}

int run_tf_variables_command(const TfVariablesCommand& command, std::ostream& out) {
  if (!command.json.empty()) check_output_file(command.json);
  const tf::Checkpoint checkpoint = tf::open_checkpoint(command.checkpoint);
  const auto graph = tf::describe_checkpoint(checkpoint);
  const auto counts = name_counts(graph);
  Json rows = Json::array();
  uint64_t total = 0, unread = 0;
  for (const tf::TensorEntry& entry : checkpoint.entries) {
    // Listed whatever its dtype, as TF lists; read (for the CRC checks; values not kept) when it can be.
    const bool readable = tf::dtype_width(entry.dtype) > 0 || entry.dtype == tf::kString;
    if (readable) tf::read_tensor(checkpoint, entry);
    unread += !readable;
    Json row = describe(entry, graph, counts);
    out << row["name"].get<std::string>() << "  " << row["dtype"].get<std::string>() << "  " << shape_text(entry.shape)
        << "  " << row["bytes"].get<uint64_t>() << (entry.key != row["name"] ? "  key=" + entry.key : "")
        << (entry.partitioned ? "  (partitioned in " + std::to_string(entry.slices.size()) + " slices)" : "")
        << (readable ? "" : "  (not read: dtype not supported)") << "\n";
    total += row["bytes"].get<uint64_t>();
    rows.push_back(std::move(row));
  }
  log::info("{}: {} tensors, {} bytes in {} shard(s){}, {}", checkpoint.prefix, rows.size(), total, checkpoint.num_shards,
            graph.empty() ? "" : ", named through the object graph",
            unread ? std::to_string(unread) + " not read (dtype not supported)" : "every CRC-32C checked");
  if (!command.json.empty())
    write_json_file(command.json, {{"checkpoint", checkpoint.prefix}, {"shards", checkpoint.num_shards}, {"tensors", rows}});
  return 0;
}

}  // namespace mrcnn::config
