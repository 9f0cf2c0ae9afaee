// The message the tools give for a capability that a later milestone brings.
#pragma once

#include <string>

#include "core/error.h"

namespace mrcnn {

// Thrown after a tool has checked its inputs, for work this version cannot do yet.
inline Error not_available_yet(const std::string& what, int issue) {
  return Error(what + " is not available in mrcnn yet (planned in issue #" + std::to_string(issue) +
               "); the inputs were checked and are valid");
}

}  // namespace mrcnn
