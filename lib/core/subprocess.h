// Running another mrcnn tool as a child process (e.g. mrcnn-eval --config running mrcnn-infer,
// so that the evaluator never loads libtorch itself).
#pragma once

#include <string>
#include <vector>

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

// Runs an mrcnn tool as run_program does, for a step of this tool's work. When it fails it has
// printed its error line, and this throws ReportedFailure with its exit code; when a signal ended
// it (nothing printed), std::runtime_error naming the tool and the signal.
void run_child_tool(const std::vector<std::string>& argv);

// Sends signal to the child run_program is waiting for, if any, and waits until it has ended. For
// signal handlers (async-signal-safe): a tool ended by a signal ends its child with it.
void end_running_child(int signal);

}  // namespace mrcnn
