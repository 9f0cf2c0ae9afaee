// Logging for the library and the tools: "{}"-style messages to stderr through spdlog.
// spdlog stays inside log.cpp: its fmt and libtorch's bundled fmt are different versions
// and must never meet in one translation unit.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace mrcnn::log {

enum class Level { Debug, Info, Warn, Error };

// Installs the stderr logger; verbose enables debug messages.
void init(bool verbose);
// Also writes every message (debug included) to this file, appending; for a training run's log.
void add_file(const std::string& path);
// In a data-parallel run, ranks other than 0 log warnings and errors only (debug too when
// verbose), each line tagged with the rank; rank 0 logs as a single process does.
void set_process_rank(int rank);
bool enabled(Level level);
void write(Level level, const std::string& message);

// Replaces each "{}" in pattern with the next argument (streamed with operator<<).
template <typename... Args>
std::string format(std::string_view pattern, const Args&... args) {
  std::ostringstream out;
  size_t pos = 0;
  [[maybe_unused]] const auto emit = [&](const auto& arg) {  // unused when there are no args
    const size_t hole = pattern.find("{}", pos);
    if (hole == std::string_view::npos) return;
    out << pattern.substr(pos, hole - pos) << arg;
    pos = hole + 2;
  };
  (emit(args), ...);
  out << pattern.substr(pos);
  return out.str();
}

template <typename... Args>
void debug(std::string_view pattern, const Args&... args) {
  if (enabled(Level::Debug)) write(Level::Debug, format(pattern, args...));
}
template <typename... Args>
void info(std::string_view pattern, const Args&... args) {
  write(Level::Info, format(pattern, args...));
}
template <typename... Args>
void warn(std::string_view pattern, const Args&... args) {
  write(Level::Warn, format(pattern, args...));
}

}  // namespace mrcnn::log
