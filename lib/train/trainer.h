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
  DeviceSpec device;  // resolved
};

// Runs to the configured length (or to SIGINT/SIGTERM, after which it checkpoints and returns).
// Returns the number of the last completed step.
int64_t run_training(const Json& config, const TrainOptions& options);

// The learning rate at a step: linear warm-up from warmup_factor, then constant, multistep or
// cosine over total_steps (milestones already in steps).
double learning_rate(const Json& train_config, int64_t step, int64_t total_steps, const std::vector<int64_t>& milestones);

}  // namespace mrcnn::train
