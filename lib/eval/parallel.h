// Evaluation's work spread over threads: a loop over indices, and the error a sequential loop
// would have stopped at.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace mrcnn::eval {

// fn(i) for i in [0, n) on up to `threads` threads, which take the next chunk of indices as they
// finish one (the work per index varies a lot: cells of one object and of hundreds).
template <typename Fn>
void parallel_for(size_t n, int threads, Fn fn) {
  const size_t workers = std::max<size_t>(1, std::min<size_t>(threads, n));
  if (workers == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const size_t chunk = std::max<size_t>(1, n / (workers * 64));
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t begin; (begin = next.fetch_add(chunk)) < n;)
      for (size_t i = begin; i < std::min(n, begin + chunk); ++i) fn(i);
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

// Numbered tasks run on several threads keep the exception of the lowest-numbered one that fails,
// raised after the threads by rethrow(): the error a sequential run would have stopped at. Tasks
// numbered above a failed one are skipped (a bad record early in a huge file ends the work soon).
class FirstError {
 public:
  template <typename Fn>
  void run(size_t task, Fn fn) {
    if (task > first_.load(std::memory_order_relaxed)) return;
    try {
      fn();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (task < first_.load()) {
        first_.store(task);
        error_ = std::current_exception();
      }
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mutex_;
  std::atomic<size_t> first_{std::numeric_limits<size_t>::max()};
  std::exception_ptr error_;
};

// The thread count a caller's 0 means: every core.
inline int all_cores_if_zero(int threads) {
  return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace mrcnn::eval
