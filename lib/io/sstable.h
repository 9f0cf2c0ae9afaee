// LevelDB's table format (an "SSTable"), read-only: the file TensorFlow uses as a checkpoint's
// .index. Blocks of prefix-compressed entries with restart points, a two-level index, a footer
// with the table magic; every block's masked CRC-32C is checked.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mrcnn::sstable {

struct Entry {
  std::string key, value;
};

// Every entry of the table whose bytes are `file_bytes`, in key order (keys strictly increase).
// Throws Error naming `file` for anything malformed: short file, bad magic, a block past the end,
// a CRC mismatch, a compressed block (TF writes checkpoint indexes uncompressed), keys out of order,
// or prefix compression that would expand past a bound derived from the file size.
std::vector<Entry> read_table(std::string_view file_bytes, const std::string& file);

}  // namespace mrcnn::sstable
