// A fresh, empty temporary folder for a unit test (removed and re-created on each call).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace mrcnn::testing {

inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("mrcnn_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace mrcnn::testing
