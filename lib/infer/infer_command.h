// mrcnn-infer's command line: its flags, and the run they ask for (a model from --model or from
// --config and --weights; with --save-model written once as a self-contained model; inference over
// the images into COCO results).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "infer/inference_request.h"

namespace mrcnn::infer {

struct InferCommand {
  InferenceRequest request;
  std::string config_path;  // --config (with request.weights), or
  std::string model_file;   // --model, a self-contained model
  std::string save_model;   // --save-model: also write the loaded model here
  bool force = false;       // --force: --save-model may overwrite an existing file
  std::string on_error = "fail";
};

// Declares mrcnn-infer's flags on app, each filling command.
void add_infer_options(CLI::App& app, InferCommand& command);

// Runs what the flags ask for. Throws Error for bad input, found before anything is written: the
// images, the job and the Detector are all built and checked before --save-model writes.
int run_infer_command(InferCommand command);

}  // namespace mrcnn::infer
