#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "config/config.h"
#include "core/error.h"

namespace mrcnn::train {
namespace fs = std::filesystem;
namespace {

// A member of a JSON object read from file (latest.json, best.json, a checkpoint's .json) of the
// type is_type tests; throws Error naming the file and the key when the file was edited or broken.
const Json& member(const Json& doc, const std::string& file, const char* key, bool (Json::*is_type)() const,
                   const std::string& expected) {
  if (!doc.is_object()) throw Error(file + ": expected a JSON object, found " + json_preview(doc));
  const auto found = doc.find(key);
  if (found == doc.end()) throw Error(file + ": \"" + key + "\" is missing (expected " + expected + ")");
  if (!((*found).*is_type)())
    throw Error(file + ": \"" + key + "\" must be " + expected + ", found " + json_preview(*found));
  return *found;
}

int64_t step_member(const Json& doc, const std::string& file) {
  const Json& step = member(doc, file, "step", &Json::is_number_integer, "a step number (an integer >= 0)");
  if (step.is_number_unsigned() ? step.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) : step.get<int64_t>() < 0)
    throw Error(file + ": \"step\" must be an integer >= 0, found " + json_preview(step));
  return step.get<int64_t>();
}

// The loss scale a checkpoint's .json holds (written only when fp16 scaled the losses).
std::optional<LossScaleState> read_loss_scale(const std::string& file) {
  const Json state = read_json_file(file);
  if (!state.is_object() || !state.contains("loss_scale")) return std::nullopt;
  return LossScaleState{member(state, file, "loss_scale", &Json::is_number, "a number").get<double>(),
                        member(state, file, "clean_steps", &Json::is_number_integer, "an integer").get<int64_t>()};
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

CheckpointFolder::CheckpointFolder(fs::path dir, int kept) : dir_(std::move(dir)), kept_(kept) {}

bool CheckpointFolder::has_latest() const {
  std::error_code ec;
  return fs::exists(dir_ / "latest.json", ec);
}

LatestCheckpoint CheckpointFolder::latest() const {
  const std::string file = (dir_ / "latest.json").string();
  const Json latest = read_json_file(file);
  const std::string expected = "the name of a checkpoint in " + dir_.string() + " (such as \"step_00000500\")";
  const std::string name = member(latest, file, "checkpoint", &Json::is_string, expected).get<std::string>();
  // A name, not a path: latest.json must not lead the reads out of the checkpoint folder.
  if (name.empty() || name.front() == '.' || name.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
    throw Error(file + ": \"checkpoint\" must be " + expected + ", found " + json_preview(Json(name)));
  return {name, step_member(latest, file)};
}

Checkpoint CheckpointFolder::read_latest() const {
  const LatestCheckpoint latest = this->latest();
  Checkpoint out;
  out.step = latest.step;
  out.source = (dir_ / (latest.name + ".safetensors")).string();
  out.weights = read_safetensors(out.source);
  out.optimizer = read_safetensors((dir_ / (latest.name + ".optim.safetensors")).string());
  out.loss_scale = read_loss_scale((dir_ / (latest.name + ".json")).string());
  return out;
}

void CheckpointFolder::prepare() const {
  fs::create_directories(dir_);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_))  // half-written files of a killed run
    if (entry.path().filename().string().rfind('.', 0) == 0) fs::remove(entry.path(), ec);
}

void CheckpointFolder::write(const Checkpoint& checkpoint, const Json& config) const {
  const std::string name = checkpoint_name(checkpoint.step);
  write_safetensors((dir_ / (name + ".safetensors")).string(), checkpoint.weights,
                    {{"step", std::to_string(checkpoint.step)}, {"format", "mrcnn checkpoint"}});
  write_safetensors((dir_ / (name + ".optim.safetensors")).string(), checkpoint.optimizer);
  Json state{{"step", checkpoint.step}, {"config", config}};
  if (checkpoint.loss_scale) {
    state["loss_scale"] = checkpoint.loss_scale->scale;
    state["clean_steps"] = checkpoint.loss_scale->clean_steps;
  }
  write_json_file((dir_ / (name + ".json")).string(), state);
  write_json_file((dir_ / "latest.json").string(), Json{{"checkpoint", name}, {"step", checkpoint.step}});
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("step_", 0) == 0 && entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i + kept_ < names.size(); ++i)
    for (const char* ext : {".json", ".safetensors", ".optim.safetensors"}) fs::remove(dir_ / (names[i] + ext));
}

BestModel::BestModel(fs::path dir, Json config, data::LabelMap labels)
    : dir_(std::move(dir)), config_(std::move(config)), labels_(std::move(labels)) {
  std::error_code ec;
  if (!fs::exists(dir_ / "best.json", ec)) return;
  const std::string file = (dir_ / "best.json").string();
  const Json best = read_json_file(file);
  value_ = member(best, file, "value", &Json::is_number, "the best validation AP (a number)").get<double>();
  step_ = step_member(best, file);
}

bool BestModel::offer(int64_t step, const std::string& metric, double ap, const std::function<StateDict()>& weights) {
  if (ap <= value_) return false;
  value_ = ap;
  step_ = step;
  config::write_model_file(file().string(), weights(), step, config_, labels_);
  write_json_file((dir_ / "best.json").string(),
                  Json{{"step", step}, {"metric", metric}, {"value", ap}, {"config", config_}});
  return true;
}

}  // namespace mrcnn::train
