// A zip file's central directory (entry names and sizes), read without extracting anything, so
// that a reader can check what a hostile archive claims before a zip library allocates for it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mrcnn {

struct ZipEntry {
  std::string name;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
};

// The entries of the zip file at `path` (ZIP64 sizes and directories included). Throws
// std::invalid_argument when the end-of-directory record or an entry cannot be read.
std::vector<ZipEntry> read_zip_directory(const std::string& path);

}  // namespace mrcnn
