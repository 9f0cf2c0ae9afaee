// The parts of a training run that act after each step, one job each (detectron2's hooks): metrics
// and TensorBoard, periodic checkpoints, the final models, validation with the best model.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "core/progress.h"
#include "io/event_file.h"
#include "train/checkpoint.h"
#include "train/settings.h"
#include "train/step.h"

namespace mrcnn::train {

class Validator;

// A completed step, as the hooks see it.
struct StepEvent {
  int64_t step = 0;  // steps completed, counted from 1 (the metrics' step)
  int64_t total_steps = 0;
  double lr = 0;
  StepTotals totals;
  double data_seconds = 0;  // waiting for the staged batch
  double step_seconds = 0;  // the whole step, waiting included

  bool last() const { return step == total_steps; }
  bool stopping() const { return totals.stopping(); }
};

class Hook {
 public:
  virtual ~Hook() = default;
  virtual void after_step(const StepEvent& event) = 0;
};

// The model being trained and what a checkpoint holds besides its weights.
struct TrainedModel {
  TrainableModel& net;
  torch::optim::Optimizer& optimizer;
  const std::vector<at::Tensor>& params;
  MixedPrecision& amp;

  StateDict weights() const;
  Checkpoint checkpoint(int64_t step) const;
  // Weights, optimiser state and loss scale from a checkpoint (the weights stay on their device).
  void restore(const Checkpoint& checkpoint, const OptimizerSettings& optimizer_settings,
               const torch::Device& device) const;
};

// Rank 0's record of the run: RUN/metrics.jsonl and, when asked, TensorBoard events.
class RunLog {
 public:
  RunLog(const std::filesystem::path& run_dir, bool tensorboard);
  void write(const Json& record);  // one line of metrics.jsonl, flushed
  EventFileWriter* tensorboard() const { return tensorboard_.get(); }

 private:
  std::ofstream metrics_;
  std::unique_ptr<EventFileWriter> tensorboard_;
};

// The progress bar, and every log_period steps (and at the last) a metrics record of the losses,
// the learning rate, step and data times, memory; log: null on the other ranks.
class MetricsHook : public Hook {
 public:
  MetricsHook(RunLog* log, int64_t log_period, int64_t steps_per_epoch, int64_t steps_left, ProcessGroup* group,
              const torch::Device& device);
  void after_step(const StepEvent& event) override;

 private:
  void write_record(const StepEvent& event);

  RunLog* log_;
  int64_t log_period_, steps_per_epoch_;
  ProcessGroup* group_;
  torch::Device device_;
  std::optional<Progress> progress_;
  double data_seconds_ = 0, step_seconds_ = 0, communication_seconds_ = 0;  // since the last record
  int64_t window_ = 0;
};

// A checkpoint every period steps, at the last step and when the run stops early.
class CheckpointHook : public Hook {
 public:
  CheckpointHook(const CheckpointFolder& folder, int64_t period, const TrainedModel& model, const Json& config);
  void after_step(const StepEvent& event) override;

 private:
  const CheckpointFolder& folder_;
  int64_t period_;
  const TrainedModel& model_;
  const Json& config_;
};

// However the run ends, RUN/model.safetensors: the last weights as a self-contained model; after
// the last step also RUN/model_final.safetensors, the plain weights.
class FinalModelHook : public Hook {
 public:
  FinalModelHook(std::filesystem::path run_dir, const TrainedModel& model, const Json& config, data::LabelMap labels);
  void after_step(const StepEvent& event) override;
  // completed: the run reached its last step (model_final.safetensors too).
  void write(int64_t step, bool completed) const;

 private:
  std::filesystem::path run_dir_;
  const TrainedModel& model_;
  const Json& config_;
  data::LabelMap labels_;
};

// Validation every period steps, at the last step and at the time limit (a signal stops at once):
// COCO mAP logged, recorded and offered to the best model. On every rank (the processes share the
// val images); log and best: null on the other ranks.
class ValidationHook : public Hook {
 public:
  ValidationHook(Validator& validator, int64_t period, TrainableModel& net, const torch::Device& device,
                 ProcessGroup* group, RunLog* log, BestModel* best);
  void after_step(const StepEvent& event) override;

 private:
  void report(int64_t step, const Json& result);

  Validator& validator_;
  int64_t period_;
  TrainableModel& net_;
  torch::Device device_;
  ProcessGroup* group_;
  RunLog* log_;
  BestModel* best_;
};

}  // namespace mrcnn::train
