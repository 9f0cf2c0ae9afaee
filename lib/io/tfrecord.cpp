#include "io/tfrecord.h"

#include <array>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace mrcnn {
namespace {

std::array<uint32_t, 256> crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

std::string little_endian(uint64_t value, int bytes) {
  std::string out(bytes, '\0');
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

uint64_t read_little_endian(const char* data, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(data[i]);
  return value;
}

}  // namespace

uint32_t crc32c_extend(uint32_t crc, std::string_view data) {
  static const std::array<uint32_t, 256> table = crc_table();
  crc ^= 0xFFFFFFFFu;
  for (const char ch : data) crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data); }

// TF stores CRCs rotated and offset: a CRC computed over data that itself holds CRCs stays strong.
uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

uint32_t unmask_crc32c(uint32_t masked) {
  const uint32_t rotated = masked - 0xa282ead8u;
  return (rotated >> 17) | (rotated << 15);
}

uint32_t masked_crc32c(std::string_view data) { return mask_crc32c(crc32c(data)); }

TfRecordWriter::TfRecordWriter(const std::string& path) : path_(path), out_(path, std::ios::binary | std::ios::app) {
  if (!out_) throw Error(path + ": cannot open for writing");
}

void TfRecordWriter::write(std::string_view record) {
  const std::string length = little_endian(record.size(), 8);
  out_ << length << little_endian(masked_crc32c(length), 4) << record << little_endian(masked_crc32c(record), 4);
  if (!out_) throw Error(path_ + ": cannot write");
}

void TfRecordWriter::flush() { out_.flush(); }

TfRecordReader::TfRecordReader(const std::string& path) : path_(path) {
  require_regular_file(path);  // before opening: a FIFO would block
  in_.open(path, std::ios::binary);
  if (!in_) throw Error(path + ": cannot read");
  std::error_code ec;
  file_size_ = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot read: " + ec.message());
}

std::optional<TfRecord> TfRecordReader::next() {
  char header[12];
  in_.read(header, 12);
  if (in_.gcount() == 0) return std::nullopt;
  const std::string where = path_ + ": record at byte " + std::to_string(offset_);
  if (in_.gcount() != 12) throw Error(where + " is truncated (incomplete length header)");
  const uint64_t length = read_little_endian(header, 8);
  if (masked_crc32c(std::string_view(header, 8)) != static_cast<uint32_t>(read_little_endian(header + 8, 4)))
    throw Error(where + ": length CRC mismatch (not a TFRecord file, or corrupt)");
  // Checked against the file before the record's buffer is allocated: a 16-byte file may claim 4 GB.
  const uint64_t left = file_size_ > offset_ + 12 ? file_size_ - offset_ - 12 : 0;
  if (length > left || left - length < 4)
    throw Error(where + " is truncated (its length header claims " + std::to_string(length) + " data bytes, " +
                std::to_string(left) + " bytes are left in the file)");
  TfRecord record;
  record.offset = offset_;
  record.data.resize(length);
  char footer[4];
  in_.read(record.data.data(), static_cast<std::streamsize>(length));
  in_.read(footer, 4);
  if (!in_) throw Error(where + " is truncated (expected " + std::to_string(length) + " data bytes)");
  if (masked_crc32c(record.data) != static_cast<uint32_t>(read_little_endian(footer, 4)))
    record.problem = where + ": data CRC mismatch (corrupt record)";
  offset_ += 16 + length;
  return record;
}

std::string read_tfrecord_at(const std::string& path, uint64_t offset) {
  TfRecordReader reader(path);
  reader.seek(offset);
  const std::optional<TfRecord> record = reader.next();
  if (!record) throw Error(path + ": no record at byte " + std::to_string(offset));
  if (!record->problem.empty()) throw Error(record->problem);
  return record->data;
}

}  // namespace mrcnn
