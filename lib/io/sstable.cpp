#include "io/sstable.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "io/json_file.h"
#include "io/protobuf_wire.h"
#include "io/tfrecord.h"

namespace mrcnn::sstable {
namespace {

constexpr uint64_t kTableMagic = 0xdb4775248b80fb57ull;
constexpr size_t kFooterSize = 48;        // two block handles padded to 40 bytes, then the magic
constexpr size_t kBlockTrailerSize = 5;   // compression type byte + masked CRC-32C
constexpr unsigned char kNoCompression = 0;
constexpr unsigned char kSnappyCompression = 1;

struct BlockHandle {
  uint64_t offset = 0, size = 0;
};

uint32_t fixed32(std::string_view bytes, size_t at) {
  uint32_t value;
  std::memcpy(&value, bytes.data() + at, 4);  // little-endian hosts, as the rest of io/
  return value;
}

// Decoding state shared by the blocks of one table: the file, its name for errors, and how many
// decoded key/value bytes are still allowed (prefix compression lets 3 bytes repeat a long key).
struct TableReader {
  std::string_view file;
  const std::string& name;
  uint64_t budget;

  [[noreturn]] void fail(const std::string& what) const { throw Error(name + ": not a readable TF checkpoint index: " + what); }

  BlockHandle handle(std::string_view encoded, const char* what) const {
    proto::Reader reader(encoded);
    BlockHandle h;
    if (!reader.varint(h.offset) || !reader.varint(h.size)) fail(std::string("bad ") + what + " block handle");
    return h;
  }

  // The contents of the block at `h`, its trailer checked.
  std::string_view block(const BlockHandle& h) const {
    if (h.offset > file.size() || h.size > file.size() - h.offset ||
        kBlockTrailerSize > file.size() - h.offset - h.size)
      fail("a block at byte " + std::to_string(h.offset) + " (" + std::to_string(h.size) + " bytes) runs past the end of the " +
           std::to_string(file.size()) + "-byte file (truncated?)");
    const std::string_view contents = file.substr(h.offset, h.size);
    const auto type = static_cast<unsigned char>(file[h.offset + h.size]);
    const uint32_t stored = unmask_crc32c(fixed32(file, h.offset + h.size + 1));
    if (crc32c(file.substr(h.offset, h.size + 1)) != stored)
      fail("block CRC-32C mismatch at byte " + std::to_string(h.offset) + " (corrupt file)");
    if (type == kSnappyCompression)
      fail("block at byte " + std::to_string(h.offset) + " is Snappy-compressed (TF writes checkpoint indexes uncompressed; "
           "not supported)");
    if (type != kNoCompression) fail("unknown block compression type " + std::to_string(type));
    return contents;
  }

  std::vector<Entry> entries(std::string_view block);
};

// The entries of one block: [shared][non_shared][value_length] varints, the key's new suffix, the
// value; the restart array at the end is only for seeking, so a full scan just bounds it.
std::vector<Entry> TableReader::entries(std::string_view block) {
  if (block.size() < 4) fail("block shorter than its restart count");
  const uint64_t restarts = fixed32(block, block.size() - 4);
  if (restarts > (block.size() - 4) / 4) fail("block restart count " + std::to_string(restarts) + " past the block");
  std::string_view rest = block.substr(0, block.size() - 4 - 4 * restarts);
  std::vector<Entry> out;
  std::string key;
  while (!rest.empty()) {
    proto::Reader reader(rest);
    uint64_t shared = 0, non_shared = 0, value_size = 0;
    if (!reader.varint(shared) || !reader.varint(non_shared) || !reader.varint(value_size)) fail("truncated block entry");
    rest.remove_prefix(reader.position());
    if (shared > key.size()) fail("a block entry shares more bytes than the previous key has");
    if (non_shared > rest.size() || value_size > rest.size() - non_shared) fail("block entry past the end of its block");
    if (shared + non_shared + value_size > budget) fail("entries expand past " + std::to_string(budget) + " bytes");
    budget -= shared + non_shared + value_size;
    key.resize(shared);
    key.append(rest.substr(0, non_shared));
    out.push_back({key, std::string(rest.substr(non_shared, value_size))});
    rest.remove_prefix(non_shared + value_size);
  }
  return out;
}

}  // namespace

std::vector<Entry> read_table(std::string_view file_bytes, const std::string& file) {
  TableReader table{file_bytes, file, 1024 * 1024 + 16 * static_cast<uint64_t>(file_bytes.size())};
  if (file_bytes.size() < kFooterSize)
    table.fail("file of " + std::to_string(file_bytes.size()) + " bytes is shorter than a table footer (truncated?)");
  const std::string_view footer = file_bytes.substr(file_bytes.size() - kFooterSize);
  const uint64_t magic = fixed32(footer, 40) | static_cast<uint64_t>(fixed32(footer, 44)) << 32;
  if (magic != kTableMagic) table.fail("no table magic at the end of the file (truncated, or not a .index file)");
  proto::Reader handles(footer.substr(0, 40));
  BlockHandle metaindex, index;  // the metaindex block is empty in TF's tables and not needed
  if (!handles.varint(metaindex.offset) || !handles.varint(metaindex.size) || !handles.varint(index.offset) ||
      !handles.varint(index.size))
    table.fail("bad block handles in the footer");
  std::vector<Entry> out;
  for (const Entry& data_block : table.entries(table.block(index)))
    for (Entry& entry : table.entries(table.block(table.handle(data_block.value, "data")))) {
      if (!out.empty() && entry.key <= out.back().key)
        table.fail("keys out of order near '" + text_preview(entry.key, 200) + "'");
      out.push_back(std::move(entry));
    }
  return out;
}

}  // namespace mrcnn::sstable
