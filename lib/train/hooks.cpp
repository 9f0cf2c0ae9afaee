#include "train/hooks.h"

#include <torch/torch.h>

#include <cstdio>
#include <map>

#include <sys/resource.h>

#include "core/device.h"
#include "core/log.h"
#include "model/weights.h"
#include "train/distributed.h"
#include "train/optimizer.h"
#include "train/validation.h"

namespace mrcnn::train {
namespace fs = std::filesystem;
namespace {

constexpr int kTensorboardImages = 3;  // val images drawn with their detections at each validation

// Peak resident memory of the process so far.
double max_rss_megabytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// "bbox AP 0.4100 AP50 0.7100, segm AP ..." of the types a validation result has.
std::string scores_text(const Json& result) {
  std::string text;
  for (const char* type : {"bbox", "segm"}) {
    if (!result.contains(type)) continue;
    char part[80];
    std::snprintf(part, sizeof part, "%s%s AP %.4f AP50 %.4f", text.empty() ? "" : ", ", type,
                  result[type]["AP"].get<double>(), result[type]["AP50"].get<double>());
    text += part;
  }
  return text;
}

}  // namespace

StateDict TrainedModel::weights() const { return model::module_state_dict(net.module()); }

Checkpoint TrainedModel::checkpoint(int64_t step) const {
  Checkpoint out;
  out.step = step;
  out.weights = weights();
  out.optimizer = optimizer_state(optimizer, params);
  if (amp.scales_loss()) out.loss_scale = LossScaleState{amp.loss_scale(), amp.clean_steps()};
  return out;
}

void TrainedModel::restore(const Checkpoint& checkpoint, const OptimizerSettings& optimizer_settings,
                           const torch::Device& device) const {
  model::load_state_dict(net.module(), checkpoint.weights, false, checkpoint.source);
  restore_optimizer(optimizer, params, checkpoint.optimizer, optimizer_settings, device);
  if (amp.scales_loss() && checkpoint.loss_scale)
    amp.restore(checkpoint.loss_scale->scale, checkpoint.loss_scale->clean_steps);
}

RunLog::RunLog(const fs::path& run_dir, bool tensorboard) {
  if (tensorboard) {
    tensorboard_ = std::make_unique<EventFileWriter>((run_dir / "tensorboard").string());
    log::info("TensorBoard events in {} (tensorboard --logdir {})", tensorboard_->path(),
              (run_dir / "tensorboard").string());
  }
  metrics_.open(run_dir / "metrics.jsonl", std::ios::app);
}

void RunLog::write(const Json& record) { metrics_ << record.dump() << "\n" << std::flush; }

MetricsHook::MetricsHook(RunLog* log, int64_t log_period, int64_t steps_per_epoch, int64_t steps_left,
                         ProcessGroup* group, const torch::Device& device)
    : log_(log), log_period_(log_period), steps_per_epoch_(steps_per_epoch), group_(group), device_(device) {
  if (log_) progress_.emplace("train", steps_left, "step");
}

void MetricsHook::after_step(const StepEvent& event) {
  data_seconds_ += event.data_seconds;
  step_seconds_ += event.step_seconds;
  if (group_) communication_seconds_ += group_->take_communication_seconds();
  ++window_;
  if (progress_) {
    char status[64];
    std::snprintf(status, sizeof status, "loss %.4f lr %.3g", event.totals.total_loss(), event.lr);
    progress_->set_status(status);
    progress_->advance();
  }
  if (event.step % log_period_ == 0 || event.last()) {
    if (log_) write_record(event);
    data_seconds_ = step_seconds_ = communication_seconds_ = 0;
    window_ = 0;
  }
  if (progress_ && (event.last() || event.stopping())) progress_->finish();
}

void MetricsHook::write_record(const StepEvent& event) {
  const double loss = event.totals.total_loss();
  Json line = {{"step", event.step}, {"epoch", (event.step - 1) / steps_per_epoch_}, {"lr", event.lr}, {"loss", loss}};
  std::map<std::string, double> by_name;  // the terms in name order
  for (size_t k = 0; k < kLossNames.size(); ++k) by_name[kLossNames[k]] = event.totals.losses[k].mean();
  for (const auto& [name, value] : by_name) line[name] = value;
  line["time"] = step_seconds_ / window_;
  line["data_time"] = data_seconds_ / window_;
  if (group_) line["comm_time"] = communication_seconds_ / window_;
  line["max_rss_mb"] = max_rss_megabytes();
  if (device_.is_cuda()) line["gpu_peak_mb"] = peak_gpu_memory_mb_of(device_.index());
  log_->write(line);
  if (EventFileWriter* tensorboard = log_->tensorboard()) {
    for (const auto& [key, value] : line.items())
      if (key != "step" && key != "epoch") tensorboard->add_scalar("train/" + key, value.get<double>(), event.step);
    tensorboard->flush();
  }
  log::debug("step {}: loss {} lr {}", event.step, loss, event.lr);
}

CheckpointHook::CheckpointHook(const CheckpointFolder& folder, int64_t period, const TrainedModel& model,
                               const Json& config)
    : folder_(folder), period_(period), model_(model), config_(config) {}

void CheckpointHook::after_step(const StepEvent& event) {
  if (event.step % period_ == 0 || event.last() || event.stopping())
    folder_.write(model_.checkpoint(event.step), config_);
}

FinalModelHook::FinalModelHook(fs::path run_dir, const TrainedModel& model, const Json& config, data::LabelMap labels)
    : run_dir_(std::move(run_dir)), model_(model), config_(config), labels_(std::move(labels)) {}

void FinalModelHook::after_step(const StepEvent& event) {
  if (event.last() || event.stopping()) write(event.step, !event.stopping());
}

void FinalModelHook::write(int64_t step, bool completed) const {
  const StateDict weights = model_.weights();
  if (completed)
    write_safetensors((run_dir_ / "model_final.safetensors").string(), weights,
                      {{"step", std::to_string(step)}, {"format", "mrcnn weights"}});
  // The self-contained model: weights with the resolved config and the class names, all that
  // mrcnn-infer --model needs (the role of a TF SavedModel export).
  config::write_model_file((run_dir_ / "model.safetensors").string(), weights, step, config_, labels_);
}

ValidationHook::ValidationHook(Validator& validator, int64_t period, TrainableModel& net,
                               const torch::Device& device, ProcessGroup* group, RunLog* log, BestModel* best)
    : validator_(validator), period_(period), net_(net), device_(device), group_(group), log_(log), best_(best) {}

void ValidationHook::after_step(const StepEvent& event) {
  if (event.step % period_ != 0 && !event.last() && !event.totals.out_of_time) return;
  const int overlays = log_ && log_->tensorboard() ? kTensorboardImages : 0;
  const Json result = validator_.run(net_, device_, 2, overlays, group_);
  if (log_) report(event.step, result);
}

void ValidationHook::report(int64_t step, const Json& result) {
  // The best model is the best segm AP; a model without masks is scored (and ranked) by boxes.
  const char* ranked = result.contains("segm") ? "segm" : "bbox";
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f s", result["seconds"].get<double>());
  log::info("step {}: val {} ({} images, {})", step, scores_text(result), result["images"].get<int64_t>(), seconds);
  log_->write(Json{{"step", step}, {"val", result}});
  if (EventFileWriter* tensorboard = log_->tensorboard()) {
    for (const char* type : {"bbox", "segm"})
      if (result.contains(type))
        for (const auto& [key, value] : result[type].items())
          tensorboard->add_scalar(std::string("val/") + type + "/" + key, value.get<double>(), step);
    for (size_t i = 0; i < validator_.overlays().size(); ++i)
      tensorboard->add_image("val/image_" + std::to_string(i), validator_.overlays()[i], step);
    tensorboard->flush();
  }
  const std::string metric = std::string(ranked) + " AP";
  if (best_ && best_->offer(step, metric, result[ranked]["AP"].get<double>(),
                            [&] { return model::module_state_dict(net_.module()); }))
    log::info("step {}: best val {} so far, written to {}", step, metric, best_->file().string());
}

}  // namespace mrcnn::train
