// Where a training step's time goes: a Kineto trace (CPU operators, CUDA kernels, copies and
// runtime calls) of chosen steps, written as a Chrome trace (mrcnn-train --profile-steps).
#pragma once

#include <cstdint>
#include <filesystem>
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

// Starts the profiler when step first begins (at construction when that is the run's first step)
// and writes the trace after step last, or when the run ends before it.
class ProfilerHook : public Hook {
 public:
  ProfilerHook(ProfileSteps steps, std::filesystem::path trace_path, bool cuda, int64_t start_step);
  ~ProfilerHook() override;
  ProfilerHook(const ProfilerHook&) = delete;
  ProfilerHook& operator=(const ProfilerHook&) = delete;
  void after_step(const StepEvent& event) override;

 private:
  void start();
  void stop();

  ProfileSteps steps_;
  std::filesystem::path trace_path_;
  bool cuda_;
  bool running_ = false;
};

}  // namespace mrcnn::train
