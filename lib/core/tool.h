// The shared shape of every tool's main: standard flags (--help, --version, --verbose), one
// error path ("mrcnn-<tool>: error: <message>", exit 2) and logging set-up.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace mrcnn {

class Tool {
 public:
  // examples: lines shown under "Examples:" at the end of --help.
  Tool(std::string name, const std::string& description, const std::string& examples);

  CLI::App& app() { return app_; }
  const std::string& name() const { return name_; }

  // Parses argv, initialises logging, runs body and returns the process exit code: body's
  // result, 2 for bad usage or an mrcnn::Error, 128 + N when a child tool was killed by signal N
  // (ChildKilled, core/subprocess.h), 1 for an unexpected internal failure.
  int run(int argc, char** argv, const std::function<int()>& body);

 private:
  std::string name_;
  CLI::App app_;
  bool verbose_ = false;
};

}  // namespace mrcnn
