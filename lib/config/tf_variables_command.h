// mrcnn-config tf-variables: the tensors of a TF checkpoint or SavedModel listed without TensorFlow
// (as tf.train.list_variables), each read and CRC-checked.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>

namespace mrcnn::config {

struct TfVariablesCommand {
  std::string checkpoint, json;
};

// Adds the tf-variables subcommand to app; returns it with the function that runs it (the flags
// live with that function), ready for the tool's list of subcommands.
std::pair<CLI::App*, std::function<int()>> add_tf_variables_command(CLI::App& app);

// Lists every tensor to `out` (readable name, dtype, shape, bytes, and the raw key when it differs)
// and writes --json when given; Error for an unreadable or corrupt checkpoint.
int run_tf_variables_command(const TfVariablesCommand& command, std::ostream& out);

}  // namespace mrcnn::config
