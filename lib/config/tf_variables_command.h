// mrcnn-config tf-variables: the tensors of a TF checkpoint or SavedModel listed without TensorFlow
// (as tf.train.list_variables), each read and CRC-checked.
#pragma once

#include <CLI/CLI.hpp>

#include <iosfwd>
#include <string>

namespace mrcnn::config {

struct TfVariablesCommand {
  std::string checkpoint, json;
};

// Adds the tf-variables subcommand to app, its flags read into command.
CLI::App* add_tf_variables_command(CLI::App& app, TfVariablesCommand& command);

// Lists every tensor to `out` (readable name, dtype, shape, bytes, and the raw key when it differs)
// and writes --json when given; Error for an unreadable or corrupt checkpoint.
int run_tf_variables_command(const TfVariablesCommand& command, std::ostream& out);

}  // namespace mrcnn::config
