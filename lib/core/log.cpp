#include "core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace mrcnn::log {
namespace {

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::Debug: return spdlog::level::debug;
    case Level::Info: return spdlog::level::info;
    case Level::Warn: return spdlog::level::warn;
    case Level::Error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void init(bool verbose) {
  // Logs go to stderr so that a tool's stdout stays machine-readable (JSON, values).
  auto logger = spdlog::get("mrcnn");
  if (!logger) logger = spdlog::stderr_color_mt("mrcnn");
  logger->set_pattern("%^[%H:%M:%S %l]%$ %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void add_file(const std::string& path) {
  auto logger = spdlog::default_logger();
  for (const auto& sink : logger->sinks()) sink->set_level(logger->level());  // the console keeps its level
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  file->set_pattern("[%Y-%m-%d %H:%M:%S.%e %l] %v");
  file->set_level(spdlog::level::debug);
  logger->sinks().push_back(file);
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
}

void set_process_rank(int rank) {
  if (rank == 0) return;
  auto logger = spdlog::default_logger();
  logger->set_pattern("%^[%H:%M:%S %l]%$ [rank " + std::to_string(rank) + "] %v");
  if (logger->level() > spdlog::level::debug) logger->set_level(spdlog::level::warn);
}

bool enabled(Level level) { return spdlog::default_logger_raw()->should_log(to_spdlog(level)); }

void write(Level level, const std::string& message) { spdlog::default_logger_raw()->log(to_spdlog(level), message); }

}  // namespace mrcnn::log
