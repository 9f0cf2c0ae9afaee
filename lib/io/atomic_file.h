// Writing files so that a failure never leaves a half-written or lost file behind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mrcnn {

// Writes content to a temporary file beside path, flushes it to disk, then renames it over path.
// Throws Error naming path and the reason (missing directory, permission, disk full).
void write_file_atomic(const std::string& path, const std::string& content);
// The same for content in pieces, written in order without first joining them in memory
// (checkpoints: a header, then each tensor's bytes).
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces);

// Reads a whole file; throws Error "<path>: cannot read: <reason>" when it can't.
std::string read_text_file(const std::string& path);

}  // namespace mrcnn
