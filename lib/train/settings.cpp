#include "train/settings.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mrcnn::train {
namespace {

OptimizerSettings optimizer_from(const Json& o) {
  OptimizerSettings s;
  s.type = o["type"].get<std::string>();
  s.lr = o["lr"].get<double>();
  s.momentum = o["momentum"].get<double>();
  s.weight_decay = o["weight_decay"].get<double>();
  s.beta1 = o["betas"][0].get<double>();
  s.beta2 = o["betas"][1].get<double>();
  return s;
}

ScheduleSettings schedule_from(const Json& l) {
  ScheduleSettings s;
  s.type = l["type"].get<std::string>();
  s.warmup_steps = l["warmup_steps"].get<int64_t>();
  s.warmup_factor = l["warmup_factor"].get<double>();
  s.milestones = l["milestones"].get<std::vector<int64_t>>();
  s.gamma = l["gamma"].get<double>();
  s.min_lr_factor = l["min_lr_factor"].get<double>();
  return s;
}

TrainDataSettings data_from(const Json& d) {
  TrainDataSettings s;
  s.label_map = d["train"]["label_map"].get<std::string>();
  s.val_set = !d["val"]["annotations"].get<std::string>().empty();
  s.val_fraction = d["val_fraction"].get<double>();
  s.workers = static_cast<int>(std::max<int64_t>(1, d["workers"].get<int64_t>()));
  s.aspect_ratio_grouping = d["aspect_ratio_grouping"].get<bool>();
  s.augmentations = d["augmentation"];
  return s;
}

}  // namespace

TrainSettings TrainSettings::from_config(const Json& resolved) {
  const Json& t = resolved["train"];
  TrainSettings s;
  s.batch_size = t["batch_size"].get<int64_t>();
  s.steps = t["steps"].get<int64_t>();
  s.epochs = t["epochs"].get<int64_t>();
  s.optimizer = optimizer_from(t["optimizer"]);
  s.schedule = schedule_from(t["lr_schedule"]);
  s.grad_clip_norm = t["grad_clip_norm"].get<double>();
  s.amp = t["amp"].get<std::string>();
  s.dtype = t["dtype"].get<std::string>();
  s.channels_last = t["channels_last"].get<std::string>();
  s.cudnn_benchmark = t["cudnn_benchmark"].get<bool>();
  s.checkpoint_period = t["checkpoint_period"].get<int64_t>();
  s.eval_period = t["eval_period"].get<int64_t>();
  s.log_period = t["log_period"].get<int64_t>();
  s.init_weights = t["init_weights"].get<std::string>();
  s.seed = t["seed"].get<uint64_t>();
  s.tensorboard = t["tensorboard"].get<bool>();
  s.dist_timeout_seconds = t["dist_timeout"].get<double>();
  s.data = data_from(resolved["data"]);
  if (s.dtype == "float64" && s.amp != "off")
    throw Error("train.dtype float64 and train.amp " + s.amp +
                " exclude each other (mixed precision is for float32 weights)");
  return s;
}

int64_t TrainSettings::total_steps(int64_t steps_per_epoch) const {
  return steps > 0 ? steps : epochs * steps_per_epoch;
}

std::vector<int64_t> TrainSettings::milestone_steps(int64_t steps_per_epoch) const {
  std::vector<int64_t> out;
  for (const int64_t m : schedule.milestones) out.push_back(steps > 0 ? m : m * steps_per_epoch);
  return out;
}

int64_t TrainSettings::checkpoint_every(int64_t steps_per_epoch) const {
  return checkpoint_period > 0 ? checkpoint_period : steps_per_epoch;
}

int64_t TrainSettings::eval_every(int64_t steps_per_epoch) const {
  return eval_period > 0 ? eval_period : steps_per_epoch;
}

double learning_rate(const TrainSettings& settings, int64_t step, int64_t total_steps,
                     const std::vector<int64_t>& milestones) {
  const ScheduleSettings& s = settings.schedule;
  double factor = 1.0;
  if (step < s.warmup_steps) {
    const double alpha = static_cast<double>(step) / s.warmup_steps;
    factor = s.warmup_factor * (1 - alpha) + alpha;
  }
  if (s.type == "multistep") {
    for (const int64_t m : milestones)
      if (step >= m) factor *= s.gamma;
  } else if (s.type == "cosine") {
    const double t = std::min(1.0, static_cast<double>(step) / std::max<int64_t>(1, total_steps));
    factor *= s.min_lr_factor + (1 - s.min_lr_factor) * 0.5 * (1 + std::cos(M_PI * t));
  }
  return settings.optimizer.lr * factor;
}

void check_global_batch(int64_t batch_size, int64_t processes) {
  if (batch_size < processes)
    throw Error("train.batch_size " + std::to_string(batch_size) +
                " is the global batch, shared by all processes: it must be at least their number (" +
                std::to_string(processes) + ")");
}

}  // namespace mrcnn::train
