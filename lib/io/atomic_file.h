// Files in and out: inputs read only from regular files (a FIFO would block forever), outputs
// written so that a failure never leaves a half-written or lost file behind, and output places
// checked before a long run rather than after it.
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

// Reads a whole regular file; throws Error "<path>: cannot read: <reason>" when it can't (missing,
// no permission, a folder, a FIFO or device).
std::string read_text_file(const std::string& path);

// Throws the same Error as read_text_file unless path is an existing regular file (or a link to
// one). For readers that open files themselves (weights, TFRecords): call it before opening, since
// opening a FIFO for reading blocks until a writer comes.
void require_regular_file(const std::string& path);

// Fails before the work, not after it, when a file cannot be written at path: path is a folder,
// its folder does not exist, or that folder is not writable. Throws Error naming path and why.
void check_output_file(const std::string& path);

// Whether two paths name one file: the same path once made absolute with ".", ".." and symbolic
// links resolved (either may not exist yet), or one existing file under two names (a hard link).
bool same_file(const std::string& a, const std::string& b);

// Creates folder (and its parents) for output files and checks that a file can be written in it;
// throws Error naming the folder and the reason (a path under a regular file, no permission,
// a read-only or virtual file system).
void prepare_output_folder(const std::string& folder);

}  // namespace mrcnn
