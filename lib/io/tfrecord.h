// TFRecord files: length-prefixed records with masked CRC-32C checks, the container of TF
// Object Detection API data sets and of TensorBoard event files.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

namespace mrcnn {

// CRC-32C (Castagnoli) and the "masked" form TFRecord stores.
uint32_t crc32c(std::string_view data);
uint32_t masked_crc32c(std::string_view data);
// The CRC-32C of (bytes whose CRC is `crc`) followed by `data`, for checksums over pieces.
uint32_t crc32c_extend(uint32_t crc, std::string_view data);
uint32_t mask_crc32c(uint32_t crc);
uint32_t unmask_crc32c(uint32_t masked);

// Appends records to a file (created if missing).
class TfRecordWriter {
 public:
  explicit TfRecordWriter(const std::string& path);
  void write(std::string_view record);
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

struct TfRecord {
  uint64_t offset = 0;  // of the record's header in the file
  std::string data;
  std::string problem;  // non-empty: the data CRC does not match (the framing is intact, reading goes on)
};

// Reads records one by one. A record whose data CRC fails comes back with `problem` set; a bad
// length CRC or a truncated file throws Error naming the file and byte offset (the records
// before it were returned already). A record's length is checked against what is left of the
// file before anything is allocated for it.
class TfRecordReader {
 public:
  explicit TfRecordReader(const std::string& path);
  std::optional<TfRecord> next();
  void seek(uint64_t offset) {
    in_.seekg(static_cast<std::streamoff>(offset));
    offset_ = offset;
  }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  uint64_t offset_ = 0;
};

// The one record at a byte offset (from TfRecord::offset); throws Error when it is not intact.
std::string read_tfrecord_at(const std::string& path, uint64_t offset);

}  // namespace mrcnn
