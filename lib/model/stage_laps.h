// Stage times of one forward pass at debug level (--verbose), to see where inference time goes.
#pragma once

#include <c10/core/Device.h>

#include <chrono>

namespace mrcnn::model {

// lap("stage") logs the time since the previous lap (or construction) when debug messages are on,
// and costs nothing otherwise. On CUDA each lap waits for the device, else the time of queued
// kernels would land in a later stage.
class StageLaps {
 public:
  explicit StageLaps(const c10::Device& device);
  void lap(const char* stage);

 private:
  c10::Device device_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace mrcnn::model
