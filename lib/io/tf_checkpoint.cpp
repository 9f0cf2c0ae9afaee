#include "io/tf_checkpoint.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <string_view>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/protobuf_wire.h"
#include "io/sstable.h"
#include "io/tf_checkpoint_slices.h"
#include "io/tfrecord.h"

namespace fs = std::filesystem;

namespace mrcnn::tf {
namespace {

constexpr int kBundleVersion = 1;  // TF's kTensorBundleVersion: what this reader understands
constexpr int kMaxShards = 1 << 20;
constexpr size_t kMaxRank = 254;   // TF's TensorShape limit

[[noreturn]] void fail_entry(const std::string& index, const std::string& key, const std::string& what) {
  throw Error(index + ": tensor '" + text_preview(key, 300) + "': " + what);
}

// The dims of a TensorShapeProto (dim = 2 { size = 1 }); unknown_rank (3) cannot be a stored tensor.
std::vector<int64_t> parse_shape(std::string_view bytes, const std::string& index, const std::string& key) {
  std::vector<int64_t> dims;
  proto::Reader shape(bytes);
  while (shape.next()) {
    std::string_view dim_bytes;
    if (shape.field() == 2 && shape.read_bytes(dim_bytes)) {
      proto::Reader dim(dim_bytes);
      uint64_t size = 0;
      while (dim.next()) (dim.field() == 1 ? dim.read_varint(size) : dim.skip());
      if (!dim.ok()) fail_entry(index, key, "malformed shape dimension: " + dim.error());
      dims.push_back(static_cast<int64_t>(size));
    } else if (shape.field() == 3) {
      fail_entry(index, key, "shape of unknown rank");
    } else if (shape.ok()) {
      shape.skip();
    }
    if (dims.size() > kMaxRank) fail_entry(index, key, "more than " + std::to_string(kMaxRank) + " dimensions");
  }
  if (!shape.ok()) fail_entry(index, key, "malformed shape: " + shape.error());
  return dims;
}

// Element count with every dimension checked: negative sizes and overflowing products are refused.
int64_t element_count(const std::vector<int64_t>& shape, const std::string& index, const std::string& key) {
  int64_t elements = 1;
  for (const int64_t d : shape) {
    if (d < 0) fail_entry(index, key, "negative dimension " + std::to_string(d));
    if (d != 0 && elements > (int64_t{1} << 56) / d) fail_entry(index, key, "shape with more than 2^56 elements");
    elements *= d;
  }
  return elements;
}

// One BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6 (fixed32), slices 7.
TensorEntry parse_entry(const sstable::Entry& raw, const std::string& index) {
  TensorEntry e;
  e.key = raw.key;
  proto::Reader reader(raw.value);
  uint64_t dtype = 0, shard = 0;
  while (reader.next()) {
    std::string_view bytes;
    uint32_t crc = 0;
    switch (reader.field()) {
      case 1: reader.read_varint(dtype); break;
      case 2: if (reader.read_bytes(bytes)) e.shape = parse_shape(bytes, index, e.key); break;
      case 3: reader.read_varint(shard); break;
      case 4: reader.read_varint(e.offset); break;
      case 5: reader.read_varint(e.size); break;
      case 6: if (reader.read_fixed32(crc)) e.masked_crc = crc; break;
      case 7:
        e.partitioned = true;
        if (reader.read_bytes(bytes)) e.slices.push_back(parse_slice(bytes, index + ": tensor '" + text_preview(e.key) + "'"));
        break;
      default: reader.skip();
    }
  }
  if (!reader.ok()) fail_entry(index, e.key, "malformed index entry: " + reader.error());
  if (dtype > 1000 || shard > static_cast<uint64_t>(kMaxShards)) fail_entry(index, e.key, "dtype or shard id out of range");
  e.dtype = static_cast<int>(dtype);
  e.shard = static_cast<int>(shard);
  e.elements = element_count(e.shape, index, e.key);
  return e;
}

// The stored size must be what the shape implies (TF's own check), so that a hostile size never
// decides an allocation; string tensors need at least one length byte per element and their checksum.
void check_entry(const TensorEntry& e, int num_shards, const std::string& index) {
  if (e.shard >= num_shards)
    fail_entry(index, e.key, "shard " + std::to_string(e.shard) + " of a checkpoint with " + std::to_string(num_shards));
  if (e.partitioned) return;
  const int width = dtype_width(e.dtype);
  if (width > 0 && e.size != static_cast<uint64_t>(e.elements) * width)
    fail_entry(index, e.key, "stored size " + std::to_string(e.size) + " bytes, the shape needs " +
                                 std::to_string(e.elements * width));
  if (e.dtype == kString && e.elements > 0 && e.size < static_cast<uint64_t>(e.elements) + 4)
    fail_entry(index, e.key, "stored size " + std::to_string(e.size) + " bytes is too small for " +
                                 std::to_string(e.elements) + " strings");
}

// BundleHeaderProto: num_shards 1, endianness 2 (LITTLE = 0), version 3 (VersionDef: producer 1,
// min_consumer 2, bad_consumers 3).
int parse_header(std::string_view bytes, const std::string& index) {
  proto::Reader reader(bytes);
  uint64_t shards = 0, endianness = 0, min_consumer = 0;
  bool bad_consumer = false;
  while (reader.next()) {
    std::string_view version;
    if (reader.field() == 1) reader.read_varint(shards);
    else if (reader.field() == 2) reader.read_varint(endianness);
    else if (reader.field() == 3 && reader.read_bytes(version)) {
      proto::Reader v(version);
      while (v.next()) {
        uint64_t value = 0;
        if (v.field() == 2) v.read_varint(min_consumer);
        else if (v.field() == 3 && v.type() == proto::Varint && v.read_varint(value)) bad_consumer |= value == kBundleVersion;
        else v.skip();
      }
      if (!v.ok()) throw Error(index + ": malformed checkpoint version: " + v.error());
    } else if (reader.ok()) reader.skip();
  }
  if (!reader.ok()) throw Error(index + ": malformed checkpoint header: " + reader.error());
  if (shards < 1 || shards > kMaxShards) throw Error(index + ": checkpoint header names " + std::to_string(shards) + " shards");
  if (endianness != 0) throw Error(index + ": a big-endian checkpoint (only little-endian ones are supported)");
  if (min_consumer > kBundleVersion || bad_consumer)
    throw Error(index + ": checkpoint format version needs a newer reader (min_consumer " + std::to_string(min_consumer) + ")");
  return static_cast<int>(shards);
}

// Where `path` points, if it names a checkpoint some other way than by its prefix.
std::string prefix_in_folder(const fs::path& folder) {
  if (fs::exists(folder / "variables" / "variables.index")) return (folder / "variables" / "variables").string();
  if (fs::exists(folder / "variables.index")) return (folder / "variables").string();
  // TF's `checkpoint` state file: model_checkpoint_path: "ckpt-3" (relative to the folder).
  std::ifstream state(folder / "checkpoint");
  static const std::regex latest(R"re(^model_checkpoint_path:\s*"(.*)"\s*$)re");
  std::smatch match;
  for (std::string line; std::getline(state, line);)
    if (std::regex_match(line, match, latest)) {
      const fs::path named(match[1].str());
      return (named.is_absolute() ? named : folder / named).string();
    }
  // A SavedModel without variables: TF1's exporter freezes the weights into the graph as constants.
  if (fs::exists(folder / "saved_model.pb") || fs::exists(folder / "saved_model.pbtxt"))
    throw Error(folder.string() + ": a SavedModel without variables/variables.index: its weights are frozen into "
                "the graph (a TF1 export), which mrcnn does not read; give the checkpoint it was exported from");
  return (folder / "variables").string();  // for the error message: what a SavedModel would hold
}

// A shard file opened after its size is known, so that offsets are checked before reading.
struct Shard {
  std::string name;
  std::ifstream in;
  uint64_t size = 0;
};

Shard open_shard(const Checkpoint& checkpoint, const TensorEntry& entry) {
  Shard shard;
  shard.name = data_file_name(checkpoint.prefix, entry.shard, checkpoint.num_shards);
  if (!fs::exists(shard.name))
    throw Error(shard.name + ": missing (shard " + std::to_string(entry.shard) + " of " +
                std::to_string(checkpoint.num_shards) + ", holding tensor '" + text_preview(entry.key, 300) + "')");
  require_regular_file(shard.name);
  shard.size = fs::file_size(shard.name);
  shard.in.open(shard.name, std::ios::binary);
  if (!shard.in) throw Error(shard.name + ": cannot read");
  return shard;
}

// TF's string tensor layout: a varint64 length per element, a masked CRC-32C of those lengths (each
// as a little-endian uint32, or uint64 when it does not fit), then the bytes of every element. The
// tensor's CRC covers the lengths (same widths), the raw length checksum and the element bytes.
std::vector<std::string> parse_strings(std::string_view data, int64_t elements, uint32_t& crc, const std::string& where) {
  if (data.empty()) return std::vector<std::string>(static_cast<size_t>(elements));  // TF reads size 0 as empty strings
  proto::Reader reader(data);
  std::vector<uint64_t> lengths(static_cast<size_t>(elements));  // elements <= data size, checked at open
  uint64_t total = 0;
  for (uint64_t& length : lengths) {
    if (!reader.varint(length)) throw Error(where + ": string lengths run past the tensor (" + reader.error() + ")");
    const uint32_t narrow = static_cast<uint32_t>(length);
    crc = length <= 0xffffffffu ? crc32c_extend(crc, {reinterpret_cast<const char*>(&narrow), 4})
                                : crc32c_extend(crc, {reinterpret_cast<const char*>(&length), 8});
    if (length > data.size()) throw Error(where + ": a string length past the tensor");
    total += length;
  }
  size_t at = reader.position();
  if (data.size() - at < 4 || total != data.size() - at - 4)
    throw Error(where + ": string lengths do not add up to the tensor's stored size");
  uint32_t stored;
  std::memcpy(&stored, data.data() + at, 4);
  if (unmask_crc32c(stored) != crc) throw Error(where + ": CRC-32C mismatch in the string lengths (corrupt file)");
  crc = crc32c_extend(crc, data.substr(at, 4));
  at += 4;
  std::vector<std::string> strings;
  strings.reserve(lengths.size());
  for (const uint64_t length : lengths) {
    strings.emplace_back(data.substr(at, length));
    at += length;
  }
  crc = crc32c_extend(crc, data.substr(at - total, total));
  return strings;
}

}  // namespace

std::string dtype_name(int dtype) {
  switch (dtype) {
    case kFloat: return "float32";
    case kDouble: return "float64";
    case kInt32: return "int32";
    case kUint8: return "uint8";
    case kInt16: return "int16";
    case kInt8: return "int8";
    case kString: return "string";
    case kInt64: return "int64";
    case kBool: return "bool";
    case kBfloat16: return "bfloat16";
    case kUint16: return "uint16";
    case kHalf: return "float16";
    case kUint32: return "uint32";
    case kUint64: return "uint64";
    default: return "dtype " + std::to_string(dtype);
  }
}

int dtype_width(int dtype) {
  switch (dtype) {
    case kUint8: case kInt8: case kBool: return 1;
    case kInt16: case kUint16: case kHalf: case kBfloat16: return 2;
    case kFloat: case kInt32: case kUint32: return 4;
    case kDouble: case kInt64: case kUint64: return 8;
    default: return 0;
  }
}

std::string data_file_name(const std::string& prefix, int shard, int num_shards) {
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".data-%05d-of-%05d", shard, num_shards);
  return prefix + suffix;
}

Checkpoint open_checkpoint(const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.prefix = resolve_checkpoint_prefix(path);
  const std::string index = checkpoint.prefix + ".index";
  const std::vector<sstable::Entry> raw = sstable::read_table(read_text_file(index), index);
  // TF writes the header under the empty key, which sorts first.
  if (raw.empty() || !raw.front().key.empty()) throw Error(index + ": no checkpoint header entry (not a TF checkpoint index)");
  checkpoint.num_shards = parse_header(raw.front().value, index);
  for (size_t i = 1; i < raw.size(); ++i) {
    if (raw[i].key[0] == '\0') {  // a slice of a partitioned variable
      TensorEntry slice = parse_entry(raw[i], index);
      check_entry(slice, checkpoint.num_shards, index);
      checkpoint.slices_of[sliced_variable_name(raw[i].key, index)].push_back(std::move(slice));
      continue;
    }
    checkpoint.entries.push_back(parse_entry(raw[i], index));
    check_entry(checkpoint.entries.back(), checkpoint.num_shards, index);
  }
  return checkpoint;
}

}  // namespace mrcnn::tf

namespace mrcnn::tf {

std::string resolve_checkpoint_prefix(const std::string& path) {
  static const std::regex shard_suffix(R"(\.data-\d{5}-of-\d{5}$)");
  std::string prefix = path;
  if (fs::is_directory(path)) prefix = prefix_in_folder(path);
  else if (prefix.size() > 6 && prefix.compare(prefix.size() - 6, 6, ".index") == 0) prefix.resize(prefix.size() - 6);
  else prefix = std::regex_replace(prefix, shard_suffix, "");
  if (!fs::exists(prefix + ".index"))
    throw Error(path + ": no TF checkpoint here (looked for " + prefix +
                ".index; give a checkpoint prefix, its .index file, a SavedModel folder or a folder with a "
                "`checkpoint` file)");
  return prefix;
}

std::vector<std::string> checkpoint_files(const std::string& path) {
  std::string prefix;
  try {
    prefix = resolve_checkpoint_prefix(path);
  } catch (const Error&) {
    return {};
  }
  std::vector<std::string> files = {prefix + ".index"};
  const fs::path folder = fs::path(prefix).parent_path().empty() ? fs::path(".") : fs::path(prefix).parent_path();
  const std::string shard_start = fs::path(prefix).filename().string() + ".data-";
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind(shard_start, 0) == 0) files.push_back(it->path().string());
  return files;
}

Tensor read_tensor(const Checkpoint& checkpoint, const TensorEntry& entry) {
  if (entry.partitioned)
    return assemble_slices(checkpoint, entry, checkpoint.prefix + ".index: tensor '" + text_preview(entry.key, 300) + "'");
  Shard shard = open_shard(checkpoint, entry);
  const std::string where = shard.name + ": tensor '" + text_preview(entry.key, 300) + "'";
  if (dtype_width(entry.dtype) == 0 && entry.dtype != kString) throw Error(where + ": " + dtype_name(entry.dtype) + " not supported");
  if (entry.offset > shard.size || entry.size > shard.size - entry.offset)
    throw Error(where + " at byte " + std::to_string(entry.offset) + " (" + std::to_string(entry.size) +
                " bytes) runs past the end of the " + std::to_string(shard.size) + "-byte file (truncated?)");
  std::string data(entry.size, '\0');
  shard.in.seekg(static_cast<std::streamoff>(entry.offset));
  if (!shard.in.read(data.data(), static_cast<std::streamsize>(data.size()))) throw Error(where + ": read failed");
  Tensor tensor{entry.dtype, entry.shape, {}, {}};
  uint32_t crc = 0;
  if (entry.dtype == kString) {
    tensor.strings = parse_strings(data, entry.elements, crc, where);
  } else {
    crc = crc32c(data);
    tensor.bytes = std::move(data);
  }
  if (crc != unmask_crc32c(entry.masked_crc)) throw Error(where + ": CRC-32C mismatch (corrupt file)");
  return tensor;
}

}  // namespace mrcnn::tf
