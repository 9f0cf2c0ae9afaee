// Where a training step's time goes: a Kineto trace (CPU operators, CUDA kernels, copies and
// runtime calls) of chosen steps, written as a Chrome trace (mrcnn-train --profile-steps).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "train/hooks.h"

namespace mrcnn::train {

// Steps first..last (counted from 1, inclusive); last == 0: no profiling.
struct ProfileSteps {
  int64_t first = 0;
  int64_t last = 0;

  bool enabled() const { return last > 0; }
};

// "FIRST:LAST" (e.g. "11:15"), or "" for none; any other text throws Error naming the flag.
ProfileSteps parse_profile_steps(const std::string& text);

// Writes the trace after step last, or when the run ends before it; the first of the hooks, so
// that the trace ends with the step's own work. Its start_hook() starts the profiler when step
// first begins (at construction when that is the run's first step).
class ProfilerHook : public Hook {
 public:
  ProfilerHook(ProfileSteps steps, std::filesystem::path trace_path, bool cuda, int64_t start_step);
  ~ProfilerHook() override;
  ProfilerHook(const ProfilerHook&) = delete;
  ProfilerHook& operator=(const ProfilerHook&) = delete;
  void after_step(const StepEvent& event) override;

  // The hook that starts it: the last of the hooks, so that the work after the step before the
  // first profiled one (its checkpoint, validation) stays out of the trace.
  std::unique_ptr<Hook> start_hook();

 private:
  class StartHook;
  void start();
  void stop();

  ProfileSteps steps_;
  std::filesystem::path trace_path_;
  bool cuda_;
  bool running_ = false;
};

}  // namespace mrcnn::train
