#include "train/stop.h"

#include <atomic>
#include <csignal>

namespace mrcnn::train {
namespace {

std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested = true; }

}  // namespace

StopRequest::StopRequest(double time_limit_seconds)
    : time_limit_seconds_(time_limit_seconds), start_(std::chrono::steady_clock::now()) {
  stop_requested = false;
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
}

StopFlags StopRequest::now() const {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return {stop_requested.load(), time_limit_seconds_ > 0 && seconds >= time_limit_seconds_};
}

}  // namespace mrcnn::train
