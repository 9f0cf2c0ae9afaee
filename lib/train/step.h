// One training step: this process's share of the global batch to the device, the loss terms, the
// step's one all-reduce, backward, clipping and the optimiser step; the batch staged ahead of it.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "model/image_batch.h"
#include "model/targets.h"
#include "train/mixed_precision.h"
#include "train/stop.h"
#include "train/trainable_model.h"

namespace torch::optim {
class Optimizer;
}

namespace mrcnn::train {

class GradientAverager;
class ProcessGroup;

// The loss terms, in the order of the metrics and of the step's all-reduce.
inline constexpr std::array<const char*, 5> kLossNames = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                                                          "loss_box_reg", "loss_mask"};

// One step's batch staged on the host for upload: each image's 8-bit pixels and its target, in
// page-locked memory when training on CUDA so that the copies to the GPU do not block the host.
// Staged on a helper thread while the GPU runs the step before, so that neither the copies into
// tensors (about 70 MB of masks for 8 images at 1333x800) nor the uploads leave the GPU idle.
struct StagedBatch {
  std::vector<data::Sample> samples;  // sizes and batch positions (pixels and masks released)
  std::vector<at::Tensor> pixels;     // (H, W, 3) uint8
  std::vector<model::Target> targets;
};

StagedBatch stage_batch(data::Loader& loader, int64_t step, bool pinned);

// A loss term's sum and the count it is averaged over, over the global batch.
struct LossSum {
  double sum = 0;
  double count = 0;
  double mean() const { return sum / std::max(count, 1.0); }
};

// What a step's one all-reduce carries, summed over the processes.
struct StepTotals {
  double images = 0;            // in the global batch (0: every image was skipped as invalid)
  bool stop_requested = false;  // a process was sent SIGINT or SIGTERM
  bool out_of_time = false;     // a process reached the time limit
  std::array<LossSum, kLossNames.size()> losses;

  bool stopping() const { return stop_requested || out_of_time; }
  // The sum of the terms' means: the loss the metrics report.
  double total_loss() const;
};

struct StepOptions {
  torch::Device device = torch::kCPU;
  at::ScalarType dtype = at::kFloat;  // train.dtype
  uint64_t seed = 0;                  // train.seed
  double grad_clip_norm = 0;
  bool broadcast_buffers = false;  // trainable batch norm: rank 0's running statistics, as DDP does
};

class TrainStep {
 public:
  // group: null for one process.
  TrainStep(TrainableModel& net, torch::optim::Optimizer& optimizer, std::vector<at::Tensor> params,
            MixedPrecision& amp, ProcessGroup* group, StepOptions options);
  ~TrainStep();
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // Runs step `step` (counted from 0) at learning rate lr on this process's share of the batch;
  // stop is asked after the forward pass, and its flags travel in the step's all-reduce. Every
  // process calls it for every step, with or without images.
  StepTotals run(const StagedBatch& batch, int64_t step, double lr, const StopRequest& stop);

 private:
  struct Inputs;
  Inputs upload(const StagedBatch& batch, int64_t step) const;
  model::BatchShape global_batch_shape(const Inputs& inputs) const;
  void backward_and_step(const std::map<std::string, model::LossTerm>& terms, const StepTotals& totals,
                         bool has_images);

  TrainableModel& net_;
  torch::optim::Optimizer& optimizer_;
  std::vector<at::Tensor> params_;
  MixedPrecision& amp_;
  ProcessGroup* group_;
  std::unique_ptr<GradientAverager> averager_;  // all-reduces gradient buckets while backward runs
  StepOptions options_;
};

}  // namespace mrcnn::train
