// mrcnn-config import-tf: a TF OD API pipeline.config as an mrcnn configuration (config/tf_pipeline.h),
// and with --checkpoint its TF checkpoint as a self-contained model, converted by mrcnn-infer
// --save-model as a child process (mrcnn-config does not load libtorch).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <utility>

namespace mrcnn::config {

struct ImportTfCommand {
  std::string pipeline, label_map, output, checkpoint, save_model;
  bool force = false;
};

// Adds the import-tf subcommand to app; returns it with the function that runs it.
std::pair<CLI::App*, std::function<int()>> add_import_tf_command(CLI::App& app);

// Checks the outputs (an existing configuration or model file refused without force) and the
// checkpoint, logs what was not carried over, converts the checkpoint when one is given, and
// writes the configuration last: a failure leaves neither file written. Error for a malformed
// pipeline, a field the TF family cannot take, a missing checkpoint, or a conversion that failed.
int run_import_tf_command(const ImportTfCommand& command);

}  // namespace mrcnn::config
