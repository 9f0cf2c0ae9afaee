// Running another mrcnn tool as a child process (e.g. mrcnn-eval --config running mrcnn-infer,
// so that the evaluator never loads libtorch itself).
#pragma once

#include <signal.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace mrcnn {

// The environment variable naming the tool that runs this one: a child tool prints its error line
// under that name ("mrcnn-eval: error: mrcnn-infer: <message>", core/tool.h), so the user reads
// one line, and the parent prints nothing more.
inline constexpr const char* kParentToolVariable = "MRCNN_PARENT_TOOL";

// The path of a program installed next to the running executable ("mrcnn-infer").
std::string sibling_executable(const std::string& name);

// Runs argv[0] with the arguments, sharing stdout/stderr, with kParentToolVariable set to this
// executable's name; returns its exit code (128 + N when signal N ended it). Throws Error when it
// cannot be started.
int run_program(const std::vector<std::string>& argv);

// A child tool ended by a signal it did not get from us (the OOM killer, a user's kill): no bad
// input and no bug of ours, so one error line and the exit code a shell gives, 128 + N.
class ChildKilled : public Error {
 public:
  ChildKilled(const std::string& message, int signal) : Error(message), exit_code_(128 + signal) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Runs an mrcnn tool as run_program does, for a step of this tool's work. When it fails it has
// printed its error line, and this throws ReportedFailure with its exit code; when a signal ended
// it (nothing printed), ChildKilled "mrcnn-infer was killed by signal 9 (SIGKILL)".
void run_child_tool(const std::vector<std::string>& argv);

// Sends signal to the child run_program is waiting for, if any, and waits until it has ended; a
// child still running after a few seconds is killed (SIGKILL). For signal handlers
// (async-signal-safe): a tool ended by a signal ends its child with it.
void end_running_child(int signal);

// SIGINT, SIGTERM and SIGHUP held back in this thread while it exists (a scope that must not be
// cut by the handler: a child started but not yet recorded, a temporary folder not yet registered).
class EndingSignalsBlocked {
 public:
  EndingSignalsBlocked();
  ~EndingSignalsBlocked();
  EndingSignalsBlocked(const EndingSignalsBlocked&) = delete;
  EndingSignalsBlocked& operator=(const EndingSignalsBlocked&) = delete;
  const sigset_t& previous() const { return previous_; }  // the mask before, which a child gets

 private:
  sigset_t previous_;
};

}  // namespace mrcnn
