// mrcnn-config export-coco: a configured data set written as COCO JSON (declared here so that the
// tool's main stays a list of subcommands).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace mrcnn::config {

struct ExportCocoCommand {
  std::string config, set = "train", output;
  bool force = false;
};

// Adds the export-coco subcommand to app, its flags read into command.
CLI::App* add_export_coco_command(CLI::App& app, ExportCocoCommand& command);

// Reads the set as training does (the reader's summary logged) and writes OUT atomically; Error
// when OUT exists without --force, or for the reader's errors.
int run_export_coco_command(const ExportCocoCommand& command);

}  // namespace mrcnn::config
