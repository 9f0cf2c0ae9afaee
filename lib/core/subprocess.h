// Running another mrcnn tool as a child process (e.g. mrcnn-eval --config running mrcnn-infer,
// so that the evaluator never loads libtorch itself).
#pragma once

#include <string>
#include <vector>

namespace mrcnn {

// The path of a program installed next to the running executable ("mrcnn-infer").
std::string sibling_executable(const std::string& name);

// Runs argv[0] with the arguments, sharing stdout/stderr; returns its exit code. Throws Error
// when it cannot be started.
int run_program(const std::vector<std::string>& argv);

}  // namespace mrcnn
