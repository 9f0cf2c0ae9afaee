#include "fuzzing.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cxxabi.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

namespace mrcnn::fuzz {
namespace {

std::string scratch_dir() {
  if (const char* dir = std::getenv("MRCNN_FUZZ_SCRATCH"); dir && *dir) return dir;
  if (std::filesystem::is_directory("/dev/shm")) return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

// The scratch files of this process, removed when it exits normally.
struct ScratchFiles {
  std::map<std::string, std::string> by_suffix;
  ~ScratchFiles() {
    for (const auto& [suffix, path] : by_suffix) std::remove(path.c_str());
  }
};

}  // namespace

void abort_on_foreign_exception(const char* type, const char* what) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> readable(abi::__cxa_demangle(type, nullptr, nullptr, &status), &std::free);
  std::fprintf(stderr, "==FINDING== an exception other than mrcnn::Error escaped: %s: %s\n",
               status == 0 ? readable.get() : type, what);
  std::abort();
}

void silence_logs() { spdlog::set_level(spdlog::level::off); }

std::string scratch_file(const uint8_t* data, size_t size, const std::string& suffix) {
  static ScratchFiles files;
  std::string& path = files.by_suffix[suffix];
  if (path.empty()) path = scratch_dir() + "/mrcnn-fuzz-" + std::to_string(::getpid()) + suffix;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.flush()) abort_on_foreign_exception("scratch file", ("cannot write " + path).c_str());
  return path;
}

}  // namespace mrcnn::fuzz

// libFuzzer calls this once before the first input, in every target.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mrcnn::fuzz::silence_logs();
  return 0;
}
