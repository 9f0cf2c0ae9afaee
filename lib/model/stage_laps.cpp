#include "model/stage_laps.h"

#include <torch/cuda.h>

#include "core/log.h"

namespace mrcnn::model {

StageLaps::StageLaps(const c10::Device& device) : device_(device), last_(std::chrono::steady_clock::now()) {}

void StageLaps::lap(const char* stage) {
  if (!log::enabled(log::Level::Debug)) return;
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
  const auto now = std::chrono::steady_clock::now();
  log::debug("  {}: {} ms", stage, std::chrono::duration<double, std::milli>(now - last_).count());
  last_ = now;
}

}  // namespace mrcnn::model
