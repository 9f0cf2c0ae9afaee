// The training run behind mrcnn-train: data, model, optimiser and schedule from a resolved
// configuration; checkpoints that survive a kill; exact resume; metrics.jsonl; clean stops.
#pragma once

#include <string>

#include "core/device.h"
#include "io/json_file.h"

namespace mrcnn::train {

struct TrainOptions {
  std::string config_path;  // for messages (how to resume)
  std::string output_dir;
  std::string init_weights;  // overrides train.init_weights when set
  bool resume = false;
  bool tensorboard = false;  // or train.tensorboard
  double time_limit_seconds = 0;  // > 0: stop (validate, checkpoint) once training has run this long
  std::string profile_steps;  // "FIRST:LAST": a profiler trace of those steps in RUN/profile-trace.json
  DeviceSpec device;  // resolved
};

// Runs to the configured length, or to the time limit or SIGINT/SIGTERM, after which it
// checkpoints and returns; every end leaves RUN/model.safetensors (the last weights) and, once
// validated, RUN/checkpoints/best.safetensors, both self-contained models. Built of parts:
// settings.h, training_data.h, step.h, hooks.h, checkpoint.h. Returns the last completed step.
int64_t run_training(const Json& config, const TrainOptions& options);

}  // namespace mrcnn::train
