#include "train/profiler_hook.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>

#include <charconv>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace mrcnn::train {
namespace {

namespace kineto = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

bool parse_step(std::string_view text, int64_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value >= 1;
}

std::set<ActivityType> activities(bool cuda) {
  std::set<ActivityType> kinds{ActivityType::CPU};
  if (cuda) kinds.insert(ActivityType::CUDA);
  return kinds;
}

}  // namespace

ProfileSteps parse_profile_steps(const std::string& text) {
  if (text.empty()) return {};
  const auto colon = text.find(':');
  ProfileSteps steps;
  const std::string_view all(text);
  if (colon == std::string::npos || !parse_step(all.substr(0, colon), steps.first) ||
      !parse_step(all.substr(colon + 1), steps.last) || steps.last < steps.first)
    throw Error("--profile-steps '" + text + "': expected FIRST:LAST, two step numbers from 1 with FIRST <= LAST "
                "(e.g. 11:15)");
  return steps;
}

ProfilerHook::ProfilerHook(ProfileSteps steps, std::filesystem::path trace_path, bool cuda, int64_t start_step)
    : steps_(steps), trace_path_(std::move(trace_path)), cuda_(cuda) {
  // The run's next step is start_step + 1; when that is the first profiled one, no hook call comes first.
  if (steps_.first <= start_step + 1 && steps_.last > start_step) start();
}

ProfilerHook::~ProfilerHook() {
  try {
    stop();
  } catch (const std::exception& e) {
    log::warn("profile trace not written: {}", e.what());
  }
}

class ProfilerHook::StartHook : public Hook {
 public:
  explicit StartHook(ProfilerHook& profiler) : profiler_(profiler) {}
  void after_step(const StepEvent& event) override {
    if (event.step + 1 == profiler_.steps_.first && !event.stopping()) profiler_.start();
  }

 private:
  ProfilerHook& profiler_;
};

std::unique_ptr<Hook> ProfilerHook::start_hook() { return std::make_unique<StartHook>(*this); }

void ProfilerHook::after_step(const StepEvent& event) {
  if (event.step == steps_.last || event.stopping()) stop();
}

void ProfilerHook::start() {
  if (running_) return;
  // Kernels still queued from earlier steps would otherwise land in the first profiled step.
  if (cuda_) torch::cuda::synchronize();
  const ProfilerConfig config(ProfilerState::KINETO);
  kineto::prepareProfiler(config, activities(cuda_));
  kineto::enableProfiler(config, activities(cuda_));
  running_ = true;
  log::info("profiling steps {} to {}", steps_.first, steps_.last);
}

void ProfilerHook::stop() {
  if (!running_) return;
  running_ = false;
  if (cuda_) torch::cuda::synchronize();
  const std::unique_ptr<kineto::ProfilerResult> result = kineto::disableProfiler();
  try {
    result->save(trace_path_.string());
  } catch (const std::exception& e) {  // a full disk must not end the training
    log::warn("profile trace not written to {}: {}", trace_path_.string(), e.what());
    return;
  }
  log::info("profile of steps {} to {}: {} ({} events; open in chrome://tracing or Perfetto, or summarise with "
            "scripts/trace_summary.py)", steps_.first, steps_.last, trace_path_.string(), result->events().size());
}

}  // namespace mrcnn::train
