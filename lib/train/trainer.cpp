#include "train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <optional>

#include "core/cpu_allocator.h"
#include "core/error.h"
#include "core/log.h"
#include "io/weights_file.h"
#include "model/settings.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/hooks.h"
#include "train/optimizer.h"
#include "train/profiler_hook.h"
#include "train/step.h"
#include "train/stop.h"
#include "train/tfod_model.h"
#include "train/torchvision_model.h"
#include "train/training_data.h"
#include "train/validation.h"

namespace mrcnn::train {
namespace fs = std::filesystem;
namespace {

// An out-of-memory error naming the keys that decide the size of the model and of a step.
Error out_of_memory(const std::string& doing, const Json& config, const std::string& detail) {
  const Json& m = config["model"];
  const std::string model_keys =
      m["arch"] == "tf_faster_rcnn"
          ? "model.num_classes=" + m["num_classes"].dump() + ", model.tf.resizer=" + m["tf"]["resizer"].dump() +
                ", model.tf.second_stage.batch_size=" + m["tf"]["second_stage"]["batch_size"].dump()
          : "model.backbone=" + m["backbone"].get<std::string>() + ", model.num_classes=" + m["num_classes"].dump() +
                ", model.fpn_channels=" + m["fpn_channels"].dump() + ", model.roi.representation_size=" +
                m["roi"]["representation_size"].dump() + ", model.mask.head_channels=" +
                m["mask"]["head_channels"].dump() + ", model.max_size=" + m["max_size"].dump();
  return Error("out of memory " + doing + ": " + model_keys + ", train.batch_size=" +
               config["train"]["batch_size"].dump() + ", train.dtype=" + config["train"]["dtype"].get<std::string>() +
               " (smaller values need less memory)" + (detail.empty() ? "" : ": " + detail));
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

// Before anything is read: a new run must not overwrite one, --resume needs one whose
// latest.json is sound.
void check_run_folder(const TrainOptions& options, const CheckpointFolder& checkpoints) {
  if (!options.resume && checkpoints.has_latest())
    throw Error(options.output_dir + ": holds a run already (checkpoints/latest.json); use --resume to continue it, "
                "or another --output-dir");
  if (options.resume && !checkpoints.has_latest())
    throw Error(options.output_dir + ": no checkpoint to resume from (checkpoints/latest.json is missing)");
  if (options.resume) checkpoints.latest();  // a broken one stops the run before the data is read
}

// A GPU per process when a launcher started several.
torch::Device training_device(const TrainOptions& options, const DistributedEnv& env) {
  const torch::Device device = options.device.kind == DeviceSpec::Kind::Cuda
                                   ? torch::Device(torch::kCUDA, env.enabled() ? env.local_rank : options.device.index)
                                   : torch::Device(torch::kCPU);
  if (device.is_cuda() && env.enabled() && env.local_rank >= static_cast<int>(torch::cuda::device_count()))
    throw Error("LOCAL_RANK " + std::to_string(env.local_rank) + ": this machine shows " +
                std::to_string(torch::cuda::device_count()) +
                " CUDA devices; start at most one process per GPU (--nproc / --nproc-per-node)");
  return device;
}

// The process group of a launcher's processes; null for a single process.
std::unique_ptr<ProcessGroup> join_process_group(const DistributedEnv& env, const TrainSettings& settings,
                                                 const torch::Device& device) {
  if (!env.enabled()) return nullptr;
  // At most 1e7 s (the key's limit): the milliseconds fit an int64.
  const auto timeout = std::chrono::milliseconds(std::llround(settings.dist_timeout_seconds * 1000));
  auto group = std::make_unique<ProcessGroup>(env, timeout, device.is_cuda());
  log::info("data-parallel training: {} processes ({}), {} backend; global batch {}, about {} images per process",
            env.world_size, env.launcher, group->backend(), settings.batch_size, settings.batch_size / env.world_size);
  return group;
}

bool is_tf_family(const Json& config) { return config["model"]["arch"] == "tf_faster_rcnn"; }

// The torchvision family's model settings; none for the TF family (model.tf.*, read by its model).
std::optional<model::ModelSettings> torchvision_settings(const Json& config) {
  if (is_tf_family(config)) return std::nullopt;
  return model::ModelSettings::from_config(config);
}

// The module of the configured family (model.arch), seeded, with the initial weights
// (train.init_weights or --init-weights, unless resuming), on the device in train.dtype, in
// training mode.
std::unique_ptr<TrainableModel> build_model(const Json& config, const std::optional<model::ModelSettings>& torchvision,
                                            const TrainSettings& settings, const TrainOptions& options,
                                            const torch::Device& device) {
  torch::manual_seed(settings.seed);
  const std::string given = options.init_weights.empty() ? settings.init_weights : options.init_weights;
  const std::string init = options.resume ? "" : given;  // resuming: the checkpoint's weights
  std::unique_ptr<TrainableModel> net = with_memory_error("building the model", config, [&] {
    return torchvision ? make_torchvision_model(*torchvision, init) : make_tfod_model(config, init);
  });
  net->module().to(device, settings.dtype == "float64" ? at::kDouble : at::kFloat);
  // NHWC is the faster layout on both devices (measured: docs/BENCHMARKS.md); "off" keeps NCHW.
  if (settings.channels_last != "off") net->use_channels_last();
  if (device.is_cuda()) {
    // Worth it when the batch shapes repeat (one image size); multi-scale training would have
    // cuDNN time its algorithms again for every new shape.
    at::globalContext().setBenchmarkCuDNN(settings.cudnn_benchmark);
    reset_peak_gpu_memory(device.index());
  }
  net->train();
  return net;
}

std::vector<at::Tensor> trainable_parameters(torch::nn::Module& net) {
  std::vector<at::Tensor> params;
  for (auto& p : net.parameters())
    if (p.requires_grad()) params.push_back(p);
  return params;
}

// Every process starts from rank 0's weights (random init, loaded or resumed alike). The ranks
// arrive here after reading their data sets, at different speeds on a busy machine, so this first
// wait allows at least kStartAllowance whatever train.dist_timeout says (a short timeout is for
// noticing a rank that dies or hangs while training).
void broadcast_weights(ProcessGroup& group, torch::nn::Module& net) {
  constexpr std::chrono::seconds kStartAllowance{300};
  std::vector<at::Tensor> state;
  for (auto& p : net.parameters()) state.push_back(p);
  for (auto& b : net.buffers()) state.push_back(b);
  group.broadcast(state, 0, kStartAllowance);
}

// Rank 0's files, once training can start: the checkpoints folder, train.log, config.json.
void open_run_folder(const fs::path& run_dir, const CheckpointFolder& checkpoints, const Json& config) {
  checkpoints.prepare();
  log::add_file((run_dir / "train.log").string());
  write_json_file((run_dir / "config.json").string(), config);
}

// A loss that is not finite stops the run before anything of this step is saved.
void check_finite(const StepTotals& totals, int64_t step, const CheckpointFolder& checkpoints) {
  for (size_t k = 0; k < kLossNames.size(); ++k)
    if (!std::isfinite(totals.losses[k].sum))
      throw Error("step " + std::to_string(step) + ": " + kLossNames[k] + " is " +
                  std::to_string(totals.losses[k].sum) + "; stopped (the last checkpoint in " +
                  checkpoints.path().string() + " is intact; try a lower lr)");
}

// A run's parts, built in order: each step may stop the run with an error before the next.
struct Run {
  Run(const Json& config, const TrainOptions& options)
      : config(config),
        options(options),
        env(distributed_env()),
        torchvision(torchvision_settings(config)),
        settings(TrainSettings::from_config(config)),
        run_dir(options.output_dir),
        checkpoints(run_dir / "checkpoints") {}

  const Json& config;
  const TrainOptions& options;
  const DistributedEnv env;  // rank 0 alone writes files and logs
  const std::optional<model::ModelSettings> torchvision;  // none: the TF OD API family
  const TrainSettings settings;
  const fs::path run_dir;
  const CheckpointFolder checkpoints;
  TrainingData data;
  std::unique_ptr<data::Loader> loader;
  torch::Device device = torch::kCPU;
  std::unique_ptr<ProcessGroup> group;
  std::unique_ptr<TrainableModel> net;
  std::vector<at::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<MixedPrecision> amp;
  std::unique_ptr<TrainedModel> trained;
  int64_t start = 0;  // the step to start from (resumed: the checkpoint's)

  bool lead() const { return env.rank == 0; }
};

// Data first: everything is checked before the first step.
void prepare_data(Run& run) {
  run.data = read_training_data(run.config, run.settings, run.config["model"]["num_classes"].get<int64_t>());
  check_global_batch(run.settings.batch_size, run.env.world_size);
  // An image the family's resizer cannot take is a bad image (data.on_invalid), not a failed step.
  std::function<void(int64_t, int64_t)> check_size =
      run.torchvision ? torchvision_image_size_check(*run.torchvision) : tfod_image_size_check(run.config);
  if (run.data.validator) run.data.validator->set_image_size_check(check_size);
  run.loader = std::make_unique<data::Loader>(
      std::move(run.data.samples), run.data.spec,
      loader_options(run.settings, std::move(check_size), run.data.spec.max_image_pixels, run.env.rank,
                     run.env.world_size));
}

// Device, process group, model, optimiser, mixed precision; the checkpoint when resuming.
void prepare_model(Run& run) {
  run.device = training_device(run.options, run.env);
  run.group = join_process_group(run.env, run.settings, run.device);
  run.net = build_model(run.config, run.torchvision, run.settings, run.options, run.device);
  run.params = trainable_parameters(run.net->module());
  run.optimizer = make_optimizer(run.settings.optimizer, run.params);
  run.amp = std::make_unique<MixedPrecision>(run.settings.amp, run.device);
  run.trained.reset(new TrainedModel{*run.net, *run.optimizer, run.params, *run.amp});
  if (run.options.resume) {
    const Checkpoint checkpoint = run.checkpoints.read_latest();
    run.trained->restore(checkpoint, run.settings.optimizer, run.device);
    run.start = checkpoint.step;
    log::info("resuming {} at step {}", run.options.output_dir, run.start);
  }
  if (run.group) broadcast_weights(*run.group, run.net->module());
}

// The hooks, in the order they act after a step: metrics, checkpoint, final models, validation
// (rank 0 alone writes; every rank validates its share).
std::vector<std::unique_ptr<Hook>> make_hooks(Run& run, RunLog* log, BestModel* best, int64_t total_steps) {
  const int64_t steps_per_epoch = run.loader->steps_per_epoch();
  std::vector<std::unique_ptr<Hook>> hooks;
  const ProfileSteps profile = parse_profile_steps(run.options.profile_steps);
  ProfilerHook* profiler = nullptr;
  if (profile.enabled() && run.lead()) {
    auto hook = std::make_unique<ProfilerHook>(profile, run.run_dir / "profile-trace.json", run.device.is_cuda(),
                                               run.start);
    profiler = hook.get();
    hooks.push_back(std::move(hook));
  }
  hooks.push_back(std::make_unique<MetricsHook>(log, run.settings.log_period, steps_per_epoch,
                                                total_steps - run.start, run.group.get(), run.device));
  if (run.lead()) {
    hooks.push_back(std::make_unique<CheckpointHook>(run.checkpoints, run.settings.checkpoint_every(steps_per_epoch),
                                                     *run.trained, run.config));
    hooks.push_back(std::make_unique<FinalModelHook>(run.run_dir, *run.trained, run.config, run.data.labels));
  }
  if (run.data.validator) {
    // The TF family runs in float32 (infer.precision auto resolves so for it; bf16/fp16 are refused).
    if (!is_tf_family(run.config))
      run.data.validator->set_autocast(validation_autocast(run.config["infer"]["precision"].get<std::string>(),
                                                           run.device, run.settings.dtype == "float64"));
    hooks.push_back(std::make_unique<ValidationHook>(*run.data.validator, run.settings.eval_every(steps_per_epoch),
                                                     *run.net, run.device, run.group.get(), log, best));
  }
  if (profiler) hooks.push_back(profiler->start_hook());
  return hooks;
}

// The steps from run.start, each batch staged on a helper thread while the step before runs, the
// hooks after each step; until the last step or a stop. Returns the last step's event.
StepEvent run_steps(Run& run, TrainStep& train_step, const std::vector<std::unique_ptr<Hook>>& hooks,
                    int64_t total_steps) {
  using clock = std::chrono::steady_clock;
  const std::vector<int64_t> milestones = run.settings.milestone_steps(run.loader->steps_per_epoch());
  const bool pinned = run.device.is_cuda();  // staged in page-locked memory
  const StopRequest stop(run.options.time_limit_seconds);
  StepEvent event;
  event.step = run.start;
  event.total_steps = total_steps;
  std::future<StagedBatch> next;
  if (run.start < total_steps) next = std::async(std::launch::async, stage_batch, std::ref(*run.loader), run.start, pinned);
  for (int64_t step = run.start; step < total_steps; ++step) {
    const auto t0 = clock::now();
    const StagedBatch staged = next.get();  // rethrows a data error of the helper thread
    if (step + 1 < total_steps) next = std::async(std::launch::async, stage_batch, std::ref(*run.loader), step + 1, pinned);
    const auto t1 = clock::now();
    event.lr = learning_rate(run.settings, step, total_steps, milestones);
    event.totals = train_step.run(staged, step, event.lr, stop);
    check_finite(event.totals, step, run.checkpoints);
    event.step = step + 1;
    event.data_seconds = std::chrono::duration<double>(t1 - t0).count();
    event.step_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    for (const auto& hook : hooks) hook->after_step(event);
    if (event.stopping()) break;
  }
  return event;
}

// The loop with its hooks, and how the run ended.
int64_t train(Run& run) {
  const int64_t total_steps = run.settings.total_steps(run.loader->steps_per_epoch());
  std::unique_ptr<RunLog> run_log;
  std::unique_ptr<BestModel> best;
  if (run.lead()) {
    open_run_folder(run.run_dir, run.checkpoints, run.config);
    run_log = std::make_unique<RunLog>(run.run_dir, run.options.tensorboard || run.settings.tensorboard);
    best = std::make_unique<BestModel>(run.checkpoints.path(), run.config, run.data.labels);
  }
  log::info("training {} steps ({} per epoch), batch {}, on {}", total_steps, run.loader->steps_per_epoch(),
            run.settings.batch_size, run.device.str());
  const auto hooks = make_hooks(run, run_log.get(), best.get(), total_steps);
  StepOptions step_options{run.device, run.settings.dtype == "float64" ? at::kDouble : at::kFloat, run.settings.seed,
                           run.settings.grad_clip_norm, run.torchvision && run.torchvision->trainable_bn};
  TrainStep train_step(*run.net, *run.optimizer, run.params, *run.amp, run.group.get(), step_options);
  const StepEvent end = run_steps(run, train_step, hooks, total_steps);
  if (end.stopping()) {
    log::info("stopped at step {} ({}; checkpoint and model written); continue with: mrcnn-train --config {} "
              "--output-dir {} --resume", end.step, end.totals.out_of_time ? "time limit" : "signal",
              run.options.config_path, run.options.output_dir);
    return end.step;
  }
  if (!run.lead()) return end.step;
  if (end.step == run.start) FinalModelHook(run.run_dir, *run.trained, run.config, run.data.labels).write(end.step, true);
  const core::CpuCacheStats cache = core::installed_cpu_cache_stats();
  log::debug("CPU tensor cache: {} hits, {} misses, {} evictions, peak {} MB mapped", cache.hits, cache.misses,
             cache.evictions, cache.peak_mapped_bytes >> 20);
  log::info("done: {} steps; weights in {}, self-contained model in {}", end.step,
            (run.run_dir / "model_final.safetensors").string(), (run.run_dir / "model.safetensors").string());
  return end.step;
}

int64_t run_training_unguarded(const Json& config, const TrainOptions& options) {
  // Before any tensor exists: steady-state steps then reuse cached blocks (see cpu_allocator.cpp).
  parse_profile_steps(options.profile_steps);  // a bad value fails before any data is read
  if (!core::install_caching_cpu_allocator()) log::info("MRCNN_CPU_ALLOCATOR=system: libtorch's default CPU allocator");
  // Data-parallel when started by torchrun, srun or --nproc.
  Run run(config, options);
  log::set_process_rank(run.env.rank);
  if (is_tf_family(config))
    check_tfod_training(config, run.settings, run.env.world_size, options.device.kind == DeviceSpec::Kind::Cuda);
  check_run_folder(options, run.checkpoints);
  prepare_data(run);
  prepare_model(run);
  return train(run);
}

}  // namespace

int64_t run_training(const Json& config, const TrainOptions& options) {
  return with_memory_error("while training", config, [&] { return run_training_unguarded(config, options); });
}

}  // namespace mrcnn::train
