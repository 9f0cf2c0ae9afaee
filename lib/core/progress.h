// Progress of long work on stderr: a bar with rate and ETA on a terminal, log lines otherwise.
#pragma once

#include <chrono>
#include <string>

namespace mrcnn {

class Progress {
 public:
  // unit: what is counted ("img"); total may be 0 when unknown.
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();
  void advance(int64_t n = 1);
  // Shown after the bar (e.g. "loss 0.812 lr 0.01"), and in the periodic lines off a terminal.
  void set_status(std::string status) { status_ = std::move(status); }
  void finish();
  double elapsed_seconds() const;

 private:
  void draw(bool final);

  std::string label_, unit_, status_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_logged_decile_ = -1;
};

}  // namespace mrcnn
