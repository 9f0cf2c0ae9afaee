// The one error type the library throws for bad user input: its message is shown to users as is.
#pragma once

#include <stdexcept>
#include <string>

namespace mrcnn {

// A problem with the user's input (a file, a key, a value, a flag). The message names what was
// wrong and what was expected; tools print it as "mrcnn-<tool>: error: <message>" and exit 2.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A failure already reported to the user: a child tool printed its one error line (under the
// parent's name, core/subprocess.h), so the tool's main exits with the code and prints nothing more.
class ReportedFailure : public std::runtime_error {
 public:
  explicit ReportedFailure(int exit_code)
      : std::runtime_error("reported by a child tool"), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Exit codes shared by every tool.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInternalError = 1;
inline constexpr int kExitBadInput = 2;

}  // namespace mrcnn
