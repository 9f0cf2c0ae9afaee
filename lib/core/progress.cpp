#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/log.h"

namespace mrcnn {
namespace {

std::string clock_text(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buffer[32];
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%02ld:%02ld", s / 60, s % 60);
  return buffer;
}

}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_ && done_ > 0) std::fputc('\n', stderr);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n) {
  done_ += n;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const double eta = rate > 0 && total_ > done_ ? (total_ - done_) / rate : 0;
  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, "%.2f %s/s", rate, unit_.c_str());
  if (tty_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * done_ / total_) : 0;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %s ETA %s %s  ", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), rate_text, clock_text(eta).c_str(),
                 status_.c_str());
    if (final) std::fputc('\n', stderr);
    std::fflush(stderr);
    return;
  }
  // Not a terminal (logs, CI): a line at every tenth of the work.
  const int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : 0;
  if (decile == last_logged_decile_) return;
  last_logged_decile_ = decile;
  log::info("{}: {}/{} {} ({}), elapsed {}, ETA {}{}{}", label_, done_, total_, unit_, rate_text, clock_text(elapsed),
            clock_text(eta), status_.empty() ? "" : ", ", status_);
}

}  // namespace mrcnn
