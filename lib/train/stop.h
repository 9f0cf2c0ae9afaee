// Why a run stops before its last step: SIGINT or SIGTERM (a user, a batch scheduler), or --time-limit.
#pragma once

#include <chrono>

namespace mrcnn::train {

// What makes this process want the run to stop after the current step.
struct StopFlags {
  bool signalled = false;
  bool out_of_time = false;
};

// Catches SIGINT and SIGTERM (the run then checkpoints and returns after the step) and keeps the
// clock of the time limit. The handlers stay for the rest of the process, so that a signal that
// --nproc passes on late, after this process's last step, does not kill it while it exits.
class StopRequest {
 public:
  // time_limit_seconds: 0 for none; the clock starts now and the stop flag is cleared.
  explicit StopRequest(double time_limit_seconds);

  // This process's flags now (each process of a data-parallel run has its own; the step's
  // all-reduce makes every process stop after the same step).
  StopFlags now() const;

 private:
  double time_limit_seconds_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace mrcnn::train
