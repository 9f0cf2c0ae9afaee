// Where a run keeps its weights: periodic checkpoints (write, rotate, find the latest, resume),
// the best one, and the self-contained model file that mrcnn-infer --model reads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "config/model_file.h"
#include "data/label_map.h"
#include "io/json_file.h"
#include "io/weights_file.h"  // StateDict (ATen's tensor type only)

namespace mrcnn::train {

// Periodic checkpoints kept in a run's checkpoints folder (the best one is kept besides).
inline constexpr int kCheckpointsKept = 3;

// fp16 loss scaling's state, so that a resumed run scales its losses as the uninterrupted one.
struct LossScaleState {
  double scale = 0;
  int64_t clean_steps = 0;
};

// One checkpoint: all that --resume needs to continue the run exactly.
struct Checkpoint {
  int64_t step = 0;
  StateDict weights;    // the module's state dict
  StateDict optimizer;  // see optimizer.h
  std::optional<LossScaleState> loss_scale;
  std::string source;  // the weights' file, for messages (read_latest)
};

// What checkpoints/latest.json names: the checkpoint --resume continues from, and its step.
struct LatestCheckpoint {
  std::string name;  // such as "step_00000500"
  int64_t step = 0;
};

std::string checkpoint_name(int64_t step);

// A run's checkpoints folder: NAME.safetensors (weights), NAME.optim.safetensors, NAME.json (step,
// config, loss scale) and latest.json naming the newest complete one. Every file is written
// atomically and latest.json is switched last, so a kill at any moment leaves a resumable run.
class CheckpointFolder {
 public:
  explicit CheckpointFolder(std::filesystem::path dir, int kept = kCheckpointsKept);

  const std::filesystem::path& path() const { return dir_; }
  // latest.json exists: the folder holds a run.
  bool has_latest() const;
  // Reads and checks latest.json (the one place it is read); throws Error naming the file and key.
  LatestCheckpoint latest() const;
  // The checkpoint latest.json names.
  Checkpoint read_latest() const;
  // Creates the folder and removes the half-written files (".*") a killed run left.
  void prepare() const;
  // Writes the checkpoint, switches latest.json to it, then deletes all but the newest `kept`.
  void write(const Checkpoint& checkpoint, const Json& config) const;

 private:
  std::filesystem::path dir_;
  int kept_;
};

// The weights of the best validation AP so far: checkpoints/best.safetensors (a self-contained
// model) and best.json (step, metric, value, config); never deleted by the rotation.
class BestModel {
 public:
  // Continues from best.json when the folder has one (a resumed run).
  BestModel(std::filesystem::path dir, Json config, data::LabelMap labels);

  // Writes weights() when ap beats the best so far; returns whether it did. metric: what ap is
  // ("segm AP", or "bbox AP" for a model without masks), as best.json names it.
  bool offer(int64_t step, const std::string& metric, double ap, const std::function<StateDict()>& weights);
  std::filesystem::path file() const { return dir_ / "best.safetensors"; }
  double value() const { return value_; }
  int64_t step() const { return step_; }

 private:
  std::filesystem::path dir_;
  Json config_;
  data::LabelMap labels_;
  double value_ = -1;
  int64_t step_ = -1;
};

}  // namespace mrcnn::train
