// What every fuzz target shares: the finding rule for exceptions, quiet logs, and a scratch file
// for readers that only take a path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <typeinfo>

#include "core/error.h"

namespace mrcnn::fuzz {

// Prints the exception's type and message and aborts: libFuzzer records the input as a crash.
[[noreturn]] void abort_on_foreign_exception(const char* type, const char* what);

// Runs one input through `body`. mrcnn::Error is the expected outcome of a bad input; any other
// exception escaping a reader is a finding (the tool would print library text and exit 1).
template <typename Body>
void expect_clean_errors(Body&& body) {
  try {
    body();
  } catch (const Error&) {
    // A clear error for a bad input: what the tools promise.
  } catch (const std::exception& e) {
    abort_on_foreign_exception(typeid(e).name(), e.what());
  } catch (...) {
    abort_on_foreign_exception("(not a std::exception)", "");
  }
}

// Turns library logging off: warnings about skipped records are expected and only slow fuzzing.
void silence_logs();

// Writes the input to this process's scratch file for `suffix` (rewritten for each input, removed
// at exit) and returns its path: under $MRCNN_FUZZ_SCRATCH, else /dev/shm, else $TMPDIR or /tmp.
std::string scratch_file(const uint8_t* data, size_t size, const std::string& suffix);

}  // namespace mrcnn::fuzz
