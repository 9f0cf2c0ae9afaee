// The training settings as typed values, read once from a resolved configuration (train and data).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::train {

struct OptimizerSettings {
  std::string type = "sgd";  // sgd | adamw
  double lr = 0.02, momentum = 0.9, weight_decay = 1e-4;
  double beta1 = 0.9, beta2 = 0.999;  // adamw
};

struct ScheduleSettings {
  std::string type = "multistep";  // constant | multistep | cosine
  int64_t warmup_steps = 1000;
  double warmup_factor = 0.001;
  std::vector<int64_t> milestones{16, 22};  // in epochs, or in steps when train.steps is set
  double gamma = 0.1;                       // multistep
  double min_lr_factor = 0.0;               // cosine
};

// The data keys the trainer reads beside the data sets themselves (data::DatasetSpec::from_config).
struct TrainDataSettings {
  std::string label_map;  // data.train.label_map; empty: class names from the annotations
  bool val_set = false;   // data.val.annotations names a val set
  double val_fraction = 0;
  int workers = 2;  // at least 1: the loader's threads
  bool aspect_ratio_grouping = true;
  Json augmentations = Json::array();
};

struct TrainSettings {
  int64_t batch_size = 2;  // the global batch, over all processes
  int64_t steps = 0;       // > 0: the run length, else epochs
  int64_t epochs = 26;
  OptimizerSettings optimizer;
  ScheduleSettings schedule;
  double grad_clip_norm = 0;  // 0: no clipping
  std::string amp = "off";    // off | bf16 | fp16
  std::string dtype = "float32";
  std::string channels_last = "auto";  // auto | on | off
  bool cudnn_benchmark = false;
  int64_t checkpoint_period = 0, eval_period = 0;  // 0: once an epoch
  int64_t log_period = 20;
  std::string init_weights;
  uint64_t seed = 42;
  bool tensorboard = false;
  double dist_timeout_seconds = 600;
  TrainDataSettings data;

  // From a resolved configuration (config::resolve). Throws Error for settings that exclude each
  // other (train.dtype float64 with train.amp).
  static TrainSettings from_config(const Json& resolved);

  // What the settings mean once the loader knows the length of an epoch.
  int64_t total_steps(int64_t steps_per_epoch) const;
  std::vector<int64_t> milestone_steps(int64_t steps_per_epoch) const;
  int64_t checkpoint_every(int64_t steps_per_epoch) const;
  int64_t eval_every(int64_t steps_per_epoch) const;
};

// The learning rate at a step: linear warm-up from warmup_factor, then constant, multistep or
// cosine over total_steps (milestones already in steps: milestone_steps).
double learning_rate(const TrainSettings& settings, int64_t step, int64_t total_steps,
                     const std::vector<int64_t>& milestones);

// train.batch_size is the global batch, shared by the processes: throws Error unless each of
// them gets at least one image. mrcnn-train checks it before starting --nproc processes, the
// trainer again for processes a launcher started.
void check_global_batch(int64_t batch_size, int64_t processes);

}  // namespace mrcnn::train
