#include "train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <optional>
#include <random>

#include <sys/resource.h>

#include "core/cpu_allocator.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/datasets.h"
#include "data/label_map.h"
#include "data/loader.h"
#include "io/atomic_file.h"
#include "io/event_file.h"
#include "io/weights_file.h"
#include "model/detect.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"
#include "train/distributed.h"
#include "train/mixed_precision.h"
#include "train/validation.h"

namespace mrcnn::train {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested = true; }

constexpr int kCheckpointsKept = 3;
constexpr int kTensorboardImages = 3;  // val images drawn with their detections at each validation
constexpr const char* kLossNames[] = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg",
                                      "loss_mask"};

// Peak resident memory of the process so far.
double max_rss_megabytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// One step's batch staged on the host for upload: each image's 8-bit pixels and its target, in
// page-locked memory when training on CUDA so that the copies to the GPU do not block the host.
// Staged on a helper thread while the GPU runs the step before, so that neither the copies into
// tensors (about 70 MB of masks for 8 images at 1333x800) nor the uploads leave the GPU idle.
struct StagedBatch {
  std::vector<data::Sample> samples;  // sizes and batch positions (pixels and masks released)
  std::vector<at::Tensor> pixels;     // (H, W, 3) uint8
  std::vector<model::Target> targets;
};

StagedBatch stage_batch(data::Loader& loader, int64_t step, bool pinned) {
  StagedBatch out;
  out.samples = loader.batch(step);  // this process's part of the global batch
  const auto host = torch::TensorOptions().pinned_memory(pinned);
  for (auto& s : out.samples) {
    CV_Assert(s.image.type() == CV_8UC3);
    const cv::Mat image = s.image.isContinuous() ? s.image : s.image.clone();
    at::Tensor pixels = torch::empty({image.rows, image.cols, 3}, host.dtype(torch::kUInt8));
    std::memcpy(pixels.data_ptr(), image.data, static_cast<size_t>(pixels.numel()));
    const auto g = static_cast<int64_t>(s.boxes.size());
    model::Target t;
    t.boxes = torch::empty({g, 4}, host.dtype(torch::kFloat));
    t.labels = torch::empty({g}, host.dtype(torch::kLong));
    t.masks = torch::empty({g, s.height, s.width}, host.dtype(torch::kUInt8));
    float* boxes = t.boxes.data_ptr<float>();
    int64_t* labels = t.labels.data_ptr<int64_t>();
    auto* masks = t.masks.data_ptr<uint8_t>();
    const auto plane = static_cast<size_t>(s.height * s.width);
    for (int64_t k = 0; k < g; ++k) {
      std::copy(s.boxes[k].begin(), s.boxes[k].end(), boxes + 4 * k);
      labels[k] = s.labels[k];
      const cv::Mat& m = s.masks[k];
      std::memcpy(masks + k * plane, (m.isContinuous() ? m : m.clone()).data, plane);
    }
    out.pixels.push_back(std::move(pixels));
    out.targets.push_back(std::move(t));
    s.image.release();
    s.masks.clear();
  }
  return out;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Json& cfg, const std::vector<at::Tensor>& params) {
  const double lr = cfg["lr"].get<double>(), wd = cfg["weight_decay"].get<double>();
  if (cfg["type"] == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(lr)
                    .betas({cfg["betas"][0].get<double>(), cfg["betas"][1].get<double>()})
                    .weight_decay(wd));
  return std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(lr).momentum(cfg["momentum"].get<double>()).weight_decay(wd));
}

StateDict optimizer_state(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params) {
  StateDict out;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = optimizer.state().find(params[i].unsafeGetTensorImpl());
    if (it == optimizer.state().end()) continue;
    const std::string p = "state." + std::to_string(i) + ".";
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      out.emplace_back(p + "momentum_buffer", sgd->momentum_buffer());
    } else if (auto* adam = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
      out.emplace_back(p + "exp_avg", adam->exp_avg());
      out.emplace_back(p + "exp_avg_sq", adam->exp_avg_sq());
      out.emplace_back(p + "step", torch::tensor({adam->step()}, torch::kLong));
    }
  }
  return out;
}

void restore_optimizer(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params,
                       const StateDict& saved, bool adamw, const torch::Device& device) {
  std::map<std::string, at::Tensor> by_name(saved.begin(), saved.end());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string p = "state." + std::to_string(i) + ".";
    if (adamw) {
      if (!by_name.count(p + "exp_avg")) continue;
      auto state = std::make_unique<torch::optim::AdamWParamState>();
      state->exp_avg(by_name[p + "exp_avg"].to(device));
      state->exp_avg_sq(by_name[p + "exp_avg_sq"].to(device));
      state->step(by_name[p + "step"].item<int64_t>());
      optimizer.state()[params[i].unsafeGetTensorImpl()] = std::move(state);
    } else {
      if (!by_name.count(p + "momentum_buffer")) continue;
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(by_name[p + "momentum_buffer"].to(device));
      optimizer.state()[params[i].unsafeGetTensorImpl()] = std::move(state);
    }
  }
}

std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

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

// What checkpoints/latest.json names: the checkpoint --resume continues from and its step.
struct LatestCheckpoint {
  std::string name;
  int64_t step = 0;
};

LatestCheckpoint read_latest_checkpoint(const fs::path& dir) {
  const std::string file = (dir / "latest.json").string();
  const Json latest = read_json_file(file);
  const std::string expected = "the name of a checkpoint in " + dir.string() + " (such as \"step_00000500\")";
  const std::string name = member(latest, file, "checkpoint", &Json::is_string, expected).get<std::string>();
  // A name, not a path: latest.json must not lead the reads out of the checkpoint folder.
  if (name.empty() || name.front() == '.' || name.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
    throw Error(file + ": \"checkpoint\" must be " + expected + ", found " + json_preview(Json(name)));
  return {name, step_member(latest, file)};
}

// Weights, optimiser state and progress; latest.json is switched last, so a kill during the
// save leaves the previous checkpoint the one that --resume finds.
void save_checkpoint(const fs::path& dir, int64_t step, model::MaskRcnnImpl& net, torch::optim::Optimizer& optimizer,
                     const std::vector<at::Tensor>& params, const Json& config, const MixedPrecision& amp) {
  const std::string name = checkpoint_name(step);
  write_safetensors((dir / (name + ".safetensors")).string(), model::module_state_dict(net),
                    {{"step", std::to_string(step)}, {"format", "mrcnn checkpoint"}});
  write_safetensors((dir / (name + ".optim.safetensors")).string(), optimizer_state(optimizer, params));
  Json state{{"step", step}, {"config", config}};
  if (amp.scales_loss()) {
    state["loss_scale"] = amp.loss_scale();
    state["clean_steps"] = amp.clean_steps();
  }
  write_json_file((dir / (name + ".json")).string(), state);
  write_json_file((dir / "latest.json").string(), Json{{"checkpoint", name}, {"step", step}});
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("step_", 0) == 0 && entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i + kCheckpointsKept < names.size(); ++i)
    for (const char* ext : {".json", ".safetensors", ".optim.safetensors"}) fs::remove(dir / (names[i] + ext));
}

// Paths that must exist before anything starts (a TFRecord path may be a glob or shard pattern:
// its reader says when nothing matches).
void check_data_paths(const data::DatasetSpec& spec, const std::string& key) {
  std::error_code ec;
  if (spec.format == "tfrecord") {
    if (data::expand_record_paths(spec.annotations).empty())
      throw Error(key + ".annotations: no TFRecord file matches '" + spec.annotations + "'");
    return;
  }
  if (!fs::exists(spec.annotations, ec)) throw Error(key + ".annotations: '" + spec.annotations + "' does not exist");
  if (!fs::exists(spec.images, ec)) throw Error(key + ".images: '" + spec.images + "' does not exist");
}

// The val set: data.val when it names annotations (a COCO file is evaluated as it is, crowd
// regions included), else the images data.val_fraction held out; none when neither is set.
std::unique_ptr<Validator> make_validator(const Json& data_cfg, std::vector<data::Sample> held_out,
                                          const data::DatasetSpec& train_spec, int64_t num_classes) {
  const Json& val = data_cfg["val"];
  const std::string annotations = val["annotations"].get<std::string>();
  if (!annotations.empty()) {
    data::DatasetSpec spec{val["format"].get<std::string>(), val["images"].get<std::string>(), annotations,
                           train_spec.on_invalid, num_classes};
    spec.max_image_pixels = train_spec.max_image_pixels;
    check_data_paths(spec, "data.val");
    data::ReadReport report;
    std::vector<data::Sample> samples = data::read_dataset(spec, report);
    log::info("{}", report.summary(spec.annotations));
    eval::CocoGroundTruth gt = spec.format == "coco"
                                   ? eval::CocoGroundTruth::read(spec.annotations)
                                   : eval::CocoGroundTruth::from_json(data::coco_document(samples, num_classes), annotations);
    return std::make_unique<Validator>(std::move(samples), spec, std::move(gt));
  }
  if (held_out.empty()) return nullptr;
  eval::CocoGroundTruth gt =
      eval::CocoGroundTruth::from_json(data::coco_document(held_out, num_classes), "held-out training images");
  return std::make_unique<Validator>(std::move(held_out), train_spec, std::move(gt));
}

// The checkpoint kept for the best validation mAP (segm AP; bbox AP for a model without masks
// in its ground truth), beside the periodic ones, never deleted by their rotation.
struct BestCheckpoint {
  double value = -1;
  int64_t step = -1;

  void load(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir / "best.json", ec)) return;
    const std::string file = (dir / "best.json").string();
    const Json best = read_json_file(file);
    value = member(best, file, "value", &Json::is_number, "the best validation AP (a number)").get<double>();
    step = step_member(best, file);
  }
  bool offer(const fs::path& dir, int64_t at_step, double ap, model::MaskRcnnImpl& net, const Json& config) {
    if (ap <= value) return false;
    value = ap;
    step = at_step;
    write_safetensors((dir / "best.safetensors").string(), model::module_state_dict(net),
                      {{"step", std::to_string(at_step)}, {"format", "mrcnn checkpoint"}});
    write_json_file((dir / "best.json").string(),
                    Json{{"step", at_step}, {"metric", "segm AP"}, {"value", ap}, {"config", config}});
    return true;
  }
};

// Fine-tuning may re-initialise the class predictors (another num_classes); anything else that
// does not fit means the weights are of another architecture, which is an error.
void check_fine_tuning_fit(const model::LoadReport& report, const std::string& source,
                           const model::ModelSettings& settings) {
  std::vector<std::string> problems;
  for (const auto& m : report.shape_mismatch)
    if (m.rfind("roi_heads.box_predictor.", 0) != 0 && m.rfind("roi_heads.mask_predictor.mask_fcn_logits.", 0) != 0)
      problems.push_back("shape mismatch: " + m);
  for (const auto& m : report.missing) problems.push_back("missing: " + m);
  for (const auto& m : report.unexpected) problems.push_back("unexpected: " + m);
  if (problems.empty()) return;
  std::string message = source + ": weights of another architecture than this config's (model.backbone " +
                        settings.backbone + "): " + std::to_string(problems.size()) + " tensors do not fit, first " +
                        problems.front();
  throw Error(message);
}

// An out-of-memory error naming the keys that decide the size of the model and of a step.
Error out_of_memory(const std::string& doing, const Json& config, const std::string& detail) {
  const Json& m = config["model"];
  return Error("out of memory " + doing + ": model.backbone=" + m["backbone"].get<std::string>() +
               ", model.num_classes=" + m["num_classes"].dump() + ", model.fpn_channels=" + m["fpn_channels"].dump() +
               ", model.roi.representation_size=" + m["roi"]["representation_size"].dump() +
               ", model.mask.head_channels=" + m["mask"]["head_channels"].dump() + ", model.max_size=" +
               m["max_size"].dump() + ", train.batch_size=" + config["train"]["batch_size"].dump() +
               ", train.dtype=" + config["train"]["dtype"].get<std::string>() + " (smaller values need less memory)" +
               (detail.empty() ? "" : ": " + detail));
}

// Runs f; memory it cannot get (the caching allocator's std::bad_alloc, libtorch's out-of-memory
// error) becomes an error naming the keys that size the model and a step, not an internal error.
template <class F>
auto with_memory_error(const std::string& doing, const Json& config, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    throw out_of_memory(doing, config, "");
  } catch (const c10::OutOfMemoryError& e) {
    const std::string text = e.what_without_backtrace();
    throw out_of_memory(doing, config, text_preview(text.substr(0, text.find('\n')), 200));
  }
}

}  // namespace

double learning_rate(const Json& train, int64_t step, int64_t total_steps, const std::vector<int64_t>& milestones) {
  const Json& s = train["lr_schedule"];
  const double base = train["optimizer"]["lr"].get<double>();
  double factor = 1.0;
  const int64_t warmup = s["warmup_steps"].get<int64_t>();
  if (step < warmup) {
    const double alpha = static_cast<double>(step) / warmup;
    factor = s["warmup_factor"].get<double>() * (1 - alpha) + alpha;
  }
  if (s["type"] == "multistep") {
    for (const int64_t m : milestones)
      if (step >= m) factor *= s["gamma"].get<double>();
  } else if (s["type"] == "cosine") {
    const double min_factor = s["min_lr_factor"].get<double>();
    const double t = std::min(1.0, static_cast<double>(step) / std::max<int64_t>(1, total_steps));
    factor *= min_factor + (1 - min_factor) * 0.5 * (1 + std::cos(M_PI * t));
  }
  return base * factor;
}

namespace {

int64_t run_training_unguarded(const Json& config, const TrainOptions& options) {
  // Before any tensor exists: steady-state steps then reuse cached blocks (see cpu_allocator.cpp).
  if (!core::install_caching_cpu_allocator()) log::info("MRCNN_CPU_ALLOCATOR=system: libtorch's default CPU allocator");
  // Data-parallel when started by torchrun, srun or --nproc: rank 0 alone writes files and logs.
  const DistributedEnv env = distributed_env();
  const bool lead = env.rank == 0;
  log::set_process_rank(env.rank);
  const model::ModelSettings settings = model::ModelSettings::from_config(config);
  const Json& train = config["train"];
  const Json& data_cfg = config["data"];
  const fs::path run_dir(options.output_dir);
  const fs::path checkpoints = run_dir / "checkpoints";
  std::error_code ec;
  if (!options.resume && fs::exists(checkpoints / "latest.json", ec))
    throw Error(options.output_dir + ": holds a run already (checkpoints/latest.json); use --resume to continue it, "
                "or another --output-dir");
  if (options.resume && !fs::exists(checkpoints / "latest.json", ec))
    throw Error(options.output_dir + ": no checkpoint to resume from (checkpoints/latest.json is missing)");
  if (options.resume) read_latest_checkpoint(checkpoints);  // a broken one stops the run before the data is read

  // Data: everything checked before the first step.
  const Json& set = data_cfg["train"];
  data::DatasetSpec spec{set["format"].get<std::string>(), set["images"].get<std::string>(),
                         set["annotations"].get<std::string>(),
                         data_cfg["on_invalid"] == "fail" ? data::InvalidPolicy::Fail : data::InvalidPolicy::Skip,
                         settings.num_classes};
  spec.max_image_pixels = data_cfg["max_image_pixels"].get<int64_t>();
  check_data_paths(spec, "data.train");
  const std::string label_map_path = set["label_map"].get<std::string>();
  if (!label_map_path.empty()) {
    const data::LabelMap labels = data::LabelMap::read(label_map_path);
    for (const auto& [id, name] : labels.names())
      if (id < 1 || id >= settings.num_classes)
        throw Error(label_map_path + ": class id " + std::to_string(id) + " (" + name + ") does not fit " +
                    "model.num_classes = " + std::to_string(settings.num_classes) + " (ids 1.." +
                    std::to_string(settings.num_classes - 1) + ")");
  }
  data::ReadReport report;
  std::vector<data::Sample> samples = data::read_dataset(spec, report);
  log::info("{}", report.summary(spec.annotations));
  const uint64_t seed = train["seed"].get<uint64_t>();
  const double val_fraction = data_cfg["val_fraction"].get<double>();
  std::vector<data::Sample> held_out;
  if (val_fraction > 0 && data_cfg["val"]["annotations"].get<std::string>().empty()) {
    // A fixed split: the same images are held out in every run of this seed.
    std::mt19937_64 rng(seed);
    std::shuffle(samples.begin(), samples.end(), rng);
    const auto count = static_cast<size_t>(std::round(val_fraction * samples.size()));
    held_out.assign(std::make_move_iterator(samples.end() - count), std::make_move_iterator(samples.end()));
    samples.resize(samples.size() - count);
    log::info("{} images held out for validation (data.val_fraction {})", count, val_fraction);
  }
  std::unique_ptr<Validator> validator = make_validator(data_cfg, std::move(held_out), spec, settings.num_classes);
  if (validator && !label_map_path.empty()) validator->set_labels(data::LabelMap::read(label_map_path));
  if (validator) validator->set_max_image_pixels(spec.max_image_pixels);
  if (!validator) log::info("no validation set (data.val.annotations and data.val_fraction are empty): no mAP during training");
  data::LoaderOptions loader_options;
  loader_options.batch_size = train["batch_size"].get<int64_t>();
  loader_options.workers = static_cast<int>(std::max<int64_t>(1, data_cfg["workers"].get<int64_t>()));
  loader_options.seed = seed;
  loader_options.aspect_ratio_grouping = data_cfg["aspect_ratio_grouping"].get<bool>();
  loader_options.augmentations = data_cfg["augmentation"];
  loader_options.shard = env.rank;
  loader_options.shards = env.world_size;
  loader_options.max_image_pixels = spec.max_image_pixels;
  // An image too elongated for the model is a bad image (skipped or named), not a failed step.
  loader_options.check_image_size = [transform = model::Transform(settings), min_sizes = settings.min_size](
                                        int64_t height, int64_t width) {
    for (const int64_t min_size : min_sizes) transform.resized_size({height, width}, min_size);
  };
  if (loader_options.batch_size < env.world_size)
    throw Error("train.batch_size " + std::to_string(loader_options.batch_size) +
                " is the global batch, shared by all processes: it must be at least their number (" +
                std::to_string(env.world_size) + ")");
  data::Loader loader(std::move(samples), spec, loader_options);
  const int64_t steps_per_epoch = loader.steps_per_epoch();
  const int64_t total_steps =
      train["steps"].get<int64_t>() > 0 ? train["steps"].get<int64_t>() : train["epochs"].get<int64_t>() * steps_per_epoch;
  std::vector<int64_t> milestones;
  for (const auto& m : train["lr_schedule"]["milestones"])
    milestones.push_back(train["steps"].get<int64_t>() > 0 ? m.get<int64_t>() : m.get<int64_t>() * steps_per_epoch);

  const torch::Device device =
      options.device.kind == DeviceSpec::Kind::Cuda
          ? torch::Device(torch::kCUDA, env.enabled() ? env.local_rank : options.device.index)  // a GPU per process
          : torch::Device(torch::kCPU);
  if (device.is_cuda() && env.enabled() && env.local_rank >= static_cast<int>(torch::cuda::device_count()))
    throw Error("LOCAL_RANK " + std::to_string(env.local_rank) + ": this machine shows " +
                std::to_string(torch::cuda::device_count()) +
                " CUDA devices; start at most one process per GPU (--nproc / --nproc-per-node)");
  std::unique_ptr<ProcessGroup> group;
  if (env.enabled()) {
    // At most 1e7 s (the key's limit): the milliseconds fit an int64.
    const auto timeout = std::chrono::milliseconds(std::llround(train["dist_timeout"].get<double>() * 1000));
    group = std::make_unique<ProcessGroup>(env, timeout, device.is_cuda());
    log::info("data-parallel training: {} processes ({}), {} backend; global batch {}, about {} images per process",
              env.world_size, env.launcher, group->backend(), loader_options.batch_size,
              loader_options.batch_size / env.world_size);
  }

  // Model and optimiser.
  torch::manual_seed(seed);
  model::MaskRcnn net = with_memory_error("building the model", config, [&] { return model::MaskRcnn(settings); });
  const std::string init = options.init_weights.empty() ? train["init_weights"].get<std::string>() : options.init_weights;
  if (!init.empty() && !options.resume) {
    const model::LoadReport loaded = model::load_state_dict(*net, read_weights_file(init), true, init);
    check_fine_tuning_fit(loaded, init, settings);
    log::info("{}: loaded {} tensors; {} start fresh (other shapes: the class predictors when num_classes differs)",
              init, loaded.loaded.size(), loaded.shape_mismatch.size() + loaded.missing.size());
    for (const auto& m : loaded.shape_mismatch) log::info("  re-initialised {}", m);
  }
  const at::ScalarType dtype = train["dtype"] == "float64" ? at::kDouble : at::kFloat;
  if (dtype == at::kDouble && train["amp"] != "off")
    throw Error("train.dtype float64 and train.amp " + train["amp"].get<std::string>() +
                " exclude each other (mixed precision is for float32 weights)");
  net->to(device, dtype);
  const std::string channels_last = train["channels_last"].get<std::string>();
  if (channels_last == "on" || (channels_last == "auto" && device.is_cpu())) net->use_channels_last();
  if (device.is_cuda()) {
    // Worth it when the batch shapes repeat (one image size); multi-scale training would have
    // cuDNN time its algorithms again for every new shape.
    at::globalContext().setBenchmarkCuDNN(train["cudnn_benchmark"].get<bool>());
    reset_peak_gpu_memory(device.index());
  }
  net->train();
  std::vector<at::Tensor> params;
  for (auto& p : net->parameters())
    if (p.requires_grad()) params.push_back(p);
  auto optimizer = make_optimizer(train["optimizer"], params);
  std::unique_ptr<GradientAverager> averager;  // all-reduces gradient buckets while backward runs
  if (group) averager = std::make_unique<GradientAverager>(*group, params);
  const bool adamw = train["optimizer"]["type"] == "adamw";

  int64_t start = 0;
  if (options.resume) {
    const LatestCheckpoint latest = read_latest_checkpoint(checkpoints);
    const std::string& name = latest.name;
    model::load_state_dict(*net, read_safetensors((checkpoints / (name + ".safetensors")).string()), false,
                           (checkpoints / (name + ".safetensors")).string());
    restore_optimizer(*optimizer, params, read_safetensors((checkpoints / (name + ".optim.safetensors")).string()),
                      adamw, device);
    start = latest.step;
    log::info("resuming {} at step {}", options.output_dir, start);
  }
  if (group) {
    // Every process starts from rank 0's weights (random init, loaded or resumed alike).
    std::vector<at::Tensor> state;
    for (auto& p : net->parameters()) state.push_back(p);
    for (auto& b : net->buffers()) state.push_back(b);
    group->broadcast(state, 0);
  }
  BestCheckpoint best;
  std::unique_ptr<EventFileWriter> tensorboard;
  std::ofstream metrics;
  if (lead) {
    fs::create_directories(checkpoints);
    for (const auto& entry : fs::directory_iterator(checkpoints))  // half-written files of a killed run
      if (entry.path().filename().string().rfind('.', 0) == 0) fs::remove(entry.path(), ec);
    log::add_file((run_dir / "train.log").string());
    write_json_file((run_dir / "config.json").string(), config);
    best.load(checkpoints);
    if (options.tensorboard || train["tensorboard"].get<bool>()) {
      tensorboard = std::make_unique<EventFileWriter>((run_dir / "tensorboard").string());
      log::info("TensorBoard events in {} (tensorboard --logdir {})", tensorboard->path(),
                (run_dir / "tensorboard").string());
    }
    metrics.open(run_dir / "metrics.jsonl", std::ios::app);
  }

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  stop_requested = false;
  const int64_t log_period = train["log_period"].get<int64_t>();
  const int64_t checkpoint_period =
      train["checkpoint_period"].get<int64_t>() > 0 ? train["checkpoint_period"].get<int64_t>() : steps_per_epoch;
  const double clip = train["grad_clip_norm"].get<double>();
  MixedPrecision amp(train["amp"].get<std::string>(), device);
  if (options.resume && amp.scales_loss()) {
    const std::string file = (checkpoints / (read_latest_checkpoint(checkpoints).name + ".json")).string();
    const Json state = read_json_file(file);
    if (state.contains("loss_scale"))
      amp.restore(member(state, file, "loss_scale", &Json::is_number, "a number").get<double>(),
                  member(state, file, "clean_steps", &Json::is_number_integer, "an integer").get<int64_t>());
  }
  const int64_t eval_period =
      train["eval_period"].get<int64_t>() > 0 ? train["eval_period"].get<int64_t>() : steps_per_epoch;
  log::info("training {} steps ({} per epoch), batch {}, on {}", total_steps, steps_per_epoch,
            loader_options.batch_size, device.str());
  std::optional<Progress> progress;
  if (lead) progress.emplace("train", total_steps - start, "step");
  const auto training_start = std::chrono::steady_clock::now();
  const double world = env.world_size;
  int64_t step = start;
  double data_seconds = 0, step_seconds = 0, communication_seconds = 0;
  int64_t window = 0;
  const bool pinned = device.is_cuda();
  std::future<StagedBatch> next_batch;
  if (step < total_steps) next_batch = std::async(std::launch::async, stage_batch, std::ref(loader), step, pinned);
  while (step < total_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    StagedBatch staged = next_batch.get();  // rethrows a data error of the helper thread
    if (step + 1 < total_steps)
      next_batch = std::async(std::launch::async, stage_batch, std::ref(loader), step + 1, pinned);
    const std::vector<data::Sample>& batch = staged.samples;
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<at::Tensor> images;
    std::vector<model::Target> targets;
    std::vector<model::ImageSize> sizes;
    for (size_t k = 0; k < batch.size(); ++k) {
      const data::Sample& s = batch[k];
      images.push_back(model::pixels_to_image(staged.pixels[k], device).to(dtype).contiguous());
      const model::Target& t = staged.targets[k];
      // Every random choice for an image (multi-scale size, sampling) comes from (seed, step, its
      // place in the global batch): the same whichever process trains on it.
      const uint64_t image_seed = model::derived_seed(seed, static_cast<uint64_t>(step) * 4096 + s.batch_position) | 1;
      targets.push_back({t.boxes.to(device, pinned).to(dtype), t.labels.to(device, pinned), t.masks.to(device, pinned), image_seed});
      sizes.emplace_back(s.height, s.width);
    }
    // Each process pads and pools its images as the whole global batch would be.
    model::BatchShape shape;
    if (group) {
      if (!batch.empty()) shape = net->transform().batch_shape(sizes, nullptr, &targets);
      const at::Tensor sides = torch::tensor(
          {shape.padded.first, shape.padded.second, shape.largest.first, shape.largest.second}, torch::kLong);
      group->all_reduce_max({sides});
      shape = {{sides[0].item<int64_t>(), sides[1].item<int64_t>()}, {sides[2].item<int64_t>(), sides[3].item<int64_t>()}};
    }
    if (group && settings.trainable_bn) group->broadcast(net->buffers(), 0);  // running statistics, as DDP does
    const double lr = learning_rate(train, step, total_steps, milestones);
    for (auto& g : optimizer->param_groups()) g.options().set_lr(lr);
    std::map<std::string, model::LossTerm> terms;
    if (!batch.empty()) {
      MixedPrecision::Scope autocast(amp);
      terms = net->loss_terms(images, targets, nullptr, false, shape);
    }
    // One all-reduce per step: the images, each loss's sum and count over the global batch, and
    // whether any process was asked to stop.
    const bool out_of_time_here =
        options.time_limit_seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - training_start).count() >=
            options.time_limit_seconds;
    std::vector<double> totals = {static_cast<double>(batch.size()), stop_requested.load() ? 1.0 : 0.0,
                                  out_of_time_here ? 1.0 : 0.0};
    std::vector<at::Tensor> local_sums;  // per loss: this process's sum, on the device (undefined: none)
    for (const char* name : kLossNames) {
      const auto it = terms.find(name);
      local_sums.push_back(it == terms.end() ? at::Tensor() : it->second.sum.detach().to(torch::kFloat64).reshape({1}));
      totals.push_back(0.0);  // the sum, read back below
      totals.push_back(it == terms.end() ? 0.0 : it->second.count);
    }
    // Reading the sums waits for the forward pass. With several processes they travel in the step's
    // one all-reduce, so they are read now; one process reads them once backward and the optimizer
    // step are queued, so that the GPU does not idle while the host queues backward.
    const auto read_sums = [&] {
      std::vector<at::Tensor> defined;
      for (const auto& t : local_sums)
        if (t.defined()) defined.push_back(t);
      if (defined.empty()) return;
      const at::Tensor host = torch::cat(defined).cpu();
      for (size_t k = 0, next = 0; k < local_sums.size(); ++k)
        if (local_sums[k].defined()) totals[3 + 2 * k] = host[static_cast<int64_t>(next++)].item<double>();
    };
    if (group) {
      read_sums();
      const at::Tensor reduced = torch::tensor(totals, torch::kFloat64);
      group->all_reduce_sum({reduced});
      totals.assign(reduced.data_ptr<double>(), reduced.data_ptr<double>() + reduced.numel());
    }
    const bool stopping = totals[1] > 0 || totals[2] > 0, out_of_time = totals[2] > 0;
    at::Tensor total = torch::zeros({}, torch::TensorOptions(device));
    for (size_t k = 0; k < std::size(kLossNames); ++k) {
      // Scaled so that averaging the processes' gradients gives the gradient of the global mean.
      const double global_count = std::max(totals[4 + 2 * k], 1.0);
      const auto it = terms.find(kLossNames[k]);
      if (it != terms.end()) total = total + it->second.sum.to(torch::kFloat) * (world / global_count);
    }
    if (totals[0] > 0) {
      optimizer->zero_grad();
      if (averager) averager->prepare();
      if (!batch.empty()) amp.scale(total).backward();
      if (averager) averager->finish();
      const bool finite_gradients = amp.unscale(params);
      if (finite_gradients) {
        if (clip > 0) torch::nn::utils::clip_grad_norm_(params, clip);
        optimizer->step();
      }
      amp.update(!finite_gradients);
    }  // else: every image of this step was skipped as invalid (data.on_invalid skip)
    if (!group) read_sums();
    std::map<std::string, double> loss_values;
    double total_value = 0;
    for (size_t k = 0; k < std::size(kLossNames); ++k) {
      const double global_sum = totals[3 + 2 * k], global_count = std::max(totals[4 + 2 * k], 1.0);
      loss_values[kLossNames[k]] = global_sum / global_count;
      total_value += global_sum / global_count;
      if (!std::isfinite(global_sum))
        throw Error("step " + std::to_string(step) + ": " + kLossNames[k] + " is " + std::to_string(global_sum) +
                    "; stopped (the last checkpoint in " + checkpoints.string() + " is intact; try a lower lr)");
    }
    ++step;
    const auto t2 = std::chrono::steady_clock::now();
    data_seconds += std::chrono::duration<double>(t1 - t0).count();
    step_seconds += std::chrono::duration<double>(t2 - t0).count();
    if (group) communication_seconds += group->take_communication_seconds();
    ++window;
    if (progress) {
      char status[64];
      std::snprintf(status, sizeof status, "loss %.4f lr %.3g", total_value, lr);
      progress->set_status(status);
      progress->advance();
    }
    if (lead && (step % log_period == 0 || step == total_steps)) {
      Json line = {{"step", step}, {"epoch", (step - 1) / steps_per_epoch}, {"lr", lr}, {"loss", total_value}};
      for (const auto& [name, value] : loss_values) line[name] = value;
      line["time"] = step_seconds / window;
      line["data_time"] = data_seconds / window;
      if (group) line["comm_time"] = communication_seconds / window;
      line["max_rss_mb"] = max_rss_megabytes();
      if (device.is_cuda()) line["gpu_peak_mb"] = peak_gpu_memory_mb_of(device.index());
      metrics << line.dump() << "\n" << std::flush;
      if (tensorboard) {
        for (const auto& [key, value] : line.items())
          if (key != "step" && key != "epoch") tensorboard->add_scalar("train/" + key, value.get<double>(), step);
        tensorboard->flush();
      }
      log::debug("step {}: loss {} lr {}", step, total_value, lr);
    }
    if (step % log_period == 0 || step == total_steps) {
      data_seconds = step_seconds = communication_seconds = 0;
      window = 0;
    }
    if (validator && (step % eval_period == 0 || step == total_steps || out_of_time)) {
      const Json result = validator->run(*net, device, 2, tensorboard ? kTensorboardImages : 0, group.get());
      if (lead) {
        const double segm_ap = result["segm"]["AP"].get<double>();
        char text[160];
        std::snprintf(text, sizeof text, "val bbox AP %.4f AP50 %.4f, segm AP %.4f AP50 %.4f (%lld images, %.1f s)",
                      result["bbox"]["AP"].get<double>(), result["bbox"]["AP50"].get<double>(), segm_ap,
                      result["segm"]["AP50"].get<double>(), static_cast<long long>(result["images"].get<int64_t>()),
                      result["seconds"].get<double>());
        log::info("step {}: {}", step, text);
        metrics << Json{{"step", step}, {"val", result}}.dump() << "\n" << std::flush;
        if (tensorboard) {
          for (const char* type : {"bbox", "segm"})
            for (const auto& [key, value] : result[type].items())
              tensorboard->add_scalar(std::string("val/") + type + "/" + key, value.get<double>(), step);
          for (size_t i = 0; i < validator->overlays().size(); ++i)
            tensorboard->add_image("val/image_" + std::to_string(i), validator->overlays()[i], step);
          tensorboard->flush();
        }
        if (best.offer(checkpoints, step, segm_ap, *net, config))
          log::info("step {}: best val segm AP so far, written to {}", step, (checkpoints / "best.safetensors").string());
      }
    }
    if (lead && (step % checkpoint_period == 0 || step == total_steps || stopping))
      save_checkpoint(checkpoints, step, *net, *optimizer, params, config, amp);
    if (stopping) {
      if (progress) progress->finish();
      log::info("stopped at step {} ({}; checkpoint written); continue with: mrcnn-train --config {} --output-dir {} "
                "--resume", step, out_of_time ? "time limit" : "signal", options.config_path, options.output_dir);
      return step;
    }
  }
  if (progress) progress->finish();
  if (!lead) return step;  // rank 0 writes the final weights
  const core::CpuCacheStats cache = core::installed_cpu_cache_stats();
  log::debug("CPU tensor cache: {} hits, {} misses, {} evictions, peak {} MB mapped", cache.hits, cache.misses,
             cache.evictions, cache.peak_mapped_bytes >> 20);
  write_safetensors((run_dir / "model_final.safetensors").string(), model::module_state_dict(*net),
                    {{"step", std::to_string(step)}, {"format", "mrcnn weights"}});
  // The self-contained model: weights with the resolved config and the class names, all that
  // mrcnn-infer --model needs (the role of a TF SavedModel export).
  data::LabelMap names = label_map_path.empty() ? data::LabelMap() : data::LabelMap::read(label_map_path);
  if (names.empty() && validator) names = validator->labels();
  Json label_json = Json::object();
  for (const auto& [id, name] : names.names()) label_json[std::to_string(id)] = name;
  write_safetensors((run_dir / "model.safetensors").string(), model::module_state_dict(*net),
                    {{"format", "mrcnn model"}, {"step", std::to_string(step)}, {"config", config.dump()},
                     {"label_map", label_json.dump()}});
  log::info("done: {} steps; weights in {}, self-contained model in {}", step,
            (run_dir / "model_final.safetensors").string(), (run_dir / "model.safetensors").string());
  return step;
}

}  // namespace

int64_t run_training(const Json& config, const TrainOptions& options) {
  return with_memory_error("while training", config, [&] { return run_training_unguarded(config, options); });
}

}  // namespace mrcnn::train
