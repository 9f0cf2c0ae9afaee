#include "io/zip_directory.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace mrcnn {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;       // "PK\5\6"
constexpr uint32_t kZip64Locator = 0x07064b50;         // "PK\6\7"
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;  // "PK\6\6"
constexpr uint32_t kDirectoryEntry = 0x02014b50;       // "PK\1\2"
constexpr size_t kEndRecordSize = 22;
constexpr size_t kLongestComment = 65535;
constexpr uint32_t kZip64Marker = 0xFFFFFFFF;

uint64_t little_endian(const std::string& bytes, size_t at, size_t width) {
  if (at + width > bytes.size()) throw std::invalid_argument("zip directory: a record runs past its end");
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) value |= uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  return value;
}

std::string read_range(std::ifstream& in, uint64_t offset, uint64_t size, uint64_t file_size) {
  if (offset > file_size || size > file_size - offset)
    throw std::invalid_argument("zip directory: it points past the end of the file");
  std::string bytes(size, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw std::invalid_argument("zip directory: cannot read it");
  return bytes;
}

struct Directory {
  uint64_t offset = 0, size = 0, entries = 0;
};

// Where the central directory is: from the last end-of-directory record (as zip readers search
// for it, backwards over a comment of up to 64 KiB), through the ZIP64 locator when one precedes it.
Directory locate_directory(std::ifstream& in, uint64_t file_size) {
  const uint64_t tail_size = std::min<uint64_t>(file_size, kEndRecordSize + kLongestComment);
  const uint64_t tail_offset = file_size - tail_size;
  const std::string tail = read_range(in, tail_offset, tail_size, file_size);
  for (size_t at = tail.size() < kEndRecordSize ? std::string::npos : tail.size() - kEndRecordSize;
       at != std::string::npos; at = at == 0 ? std::string::npos : at - 1) {
    if (little_endian(tail, at, 4) != kEndOfDirectory) continue;
    Directory dir{little_endian(tail, at + 16, 4), little_endian(tail, at + 12, 4), little_endian(tail, at + 10, 2)};
    const uint64_t end_offset = tail_offset + at;
    if (end_offset < 20) return dir;
    const std::string locator = read_range(in, end_offset - 20, 20, file_size);
    if (little_endian(locator, 0, 4) != kZip64Locator) return dir;
    const std::string end64 = read_range(in, little_endian(locator, 8, 8), 56, file_size);
    if (little_endian(end64, 0, 4) != kZip64EndOfDirectory)
      throw std::invalid_argument("zip directory: the ZIP64 locator points at no ZIP64 record");
    return {little_endian(end64, 48, 8), little_endian(end64, 40, 8), little_endian(end64, 32, 8)};
  }
  throw std::invalid_argument("zip directory: no end-of-directory record");
}

// An entry's sizes stored as 0xFFFFFFFF are in its ZIP64 extra field (uncompressed size first).
void read_zip64_sizes(const std::string& extra, ZipEntry& entry, bool uncompressed, bool compressed) {
  for (size_t at = 0; at + 4 <= extra.size();) {
    const uint64_t id = little_endian(extra, at, 2), size = little_endian(extra, at + 2, 2);
    if (id == 1) {
      size_t field = at + 4;
      if (uncompressed) entry.uncompressed_size = little_endian(extra, field, 8), field += 8;
      if (compressed) entry.compressed_size = little_endian(extra, field, 8);
      return;
    }
    at += 4 + size;
  }
  throw std::invalid_argument("zip directory: entry '" + entry.name.substr(0, 200) + "' has no ZIP64 sizes");
}

}  // namespace

std::vector<ZipEntry> read_zip_directory(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::invalid_argument("cannot open it");
  const auto file_size = static_cast<uint64_t>(in.tellg());
  const Directory dir = locate_directory(in, file_size);
  const std::string bytes = read_range(in, dir.offset, dir.size, file_size);
  std::vector<ZipEntry> entries;
  for (size_t at = 0; entries.size() < dir.entries; ) {
    if (little_endian(bytes, at, 4) != kDirectoryEntry)
      throw std::invalid_argument("zip directory: entry " + std::to_string(entries.size()) + " is not an entry");
    const uint64_t name_size = little_endian(bytes, at + 28, 2), extra_size = little_endian(bytes, at + 30, 2);
    const uint64_t comment_size = little_endian(bytes, at + 32, 2);
    if (at + 46 + name_size + extra_size > bytes.size())
      throw std::invalid_argument("zip directory: an entry runs past its end");
    ZipEntry entry{bytes.substr(at + 46, name_size), little_endian(bytes, at + 20, 4), little_endian(bytes, at + 24, 4)};
    const bool big_uncompressed = entry.uncompressed_size == kZip64Marker;
    const bool big_compressed = entry.compressed_size == kZip64Marker;
    if (big_uncompressed || big_compressed)
      read_zip64_sizes(bytes.substr(at + 46 + name_size, extra_size), entry, big_uncompressed, big_compressed);
    entries.push_back(std::move(entry));
    at += 46 + name_size + extra_size + comment_size;
  }
  return entries;
}

}  // namespace mrcnn
