#include "io/tf_checkpoint_slices.h"

#include <algorithm>

#include "core/error.h"
#include "io/protobuf_wire.h"

namespace mrcnn::tf {
namespace {

constexpr size_t kMaxRank = 254;

// Row-major strides (in elements) of `shape`.
std::vector<int64_t> strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) out[d - 1] = out[d] * shape[d];
  return out;
}

// Copies one slice's bytes (row-major over `lengths`) into the whole tensor at `start`: one
// contiguous run per position of the outer dimensions.
void copy_slice(const std::string& part, const std::vector<int64_t>& shape, const std::vector<int64_t>& start,
                const std::vector<int64_t>& lengths, int width, std::string& whole) {
  const size_t rank = shape.size();
  const std::vector<int64_t> stride = strides(shape);
  const size_t run = static_cast<size_t>(lengths.back()) * width;
  std::vector<int64_t> at(rank, 0);  // position inside the slice; the last dimension moves by runs
  for (size_t read = 0; run > 0 && read < part.size(); read += run) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) offset += (start[d] + at[d]) * stride[d];
    std::copy_n(part.data() + read, run, whole.data() + offset * width);
    for (size_t d = rank - 1; d-- > 0;) {  // the next outer position, odometer-style
      if (++at[d] < lengths[d]) break;
      at[d] = 0;
    }
  }
}

// Where one slice goes: its start and length per dimension, checked against the variable's shape
// and the slice entry's own dtype and shape.
std::pair<std::vector<int64_t>, std::vector<int64_t>> place(const Slice& spec, const TensorEntry& whole,
                                                            const TensorEntry& part, const std::string& where) {
  if (spec.size() != whole.shape.size() || part.dtype != whole.dtype)
    throw Error(where + ": a slice whose rank or dtype differs from the variable's");
  if (spec.empty()) throw Error(where + ": a partitioned scalar");  // TF partitions along a dimension
  std::vector<int64_t> start, lengths;
  for (size_t d = 0; d < spec.size(); ++d) {
    const int64_t dim = whole.shape[d];
    const int64_t length = spec[d].second == -1 ? dim : spec[d].second;
    if (spec[d].first < 0 || length < 0 || spec[d].first > dim || length > dim - spec[d].first)
      throw Error(where + ": a slice outside the variable's shape");
    start.push_back(spec[d].first);
    lengths.push_back(length);
  }
  if (lengths != part.shape) throw Error(where + ": a slice entry's shape differs from its extent");
  return {start, lengths};
}

}  // namespace

std::string sliced_variable_name(std::string_view key, const std::string& where) {
  // OrderedCode strings: 0x00 is written 0x00 0xff, 0xff is written 0xff 0x00, the end is 0x00 0x01.
  std::string name;
  for (size_t i = 1; i + 1 < key.size(); ++i) {
    const auto byte = static_cast<unsigned char>(key[i]), next = static_cast<unsigned char>(key[i + 1]);
    if (byte == 0x00 && next == 0x01) return name;
    if ((byte == 0x00 && next != 0xff) || (byte == 0xff && next != 0x00)) break;
    name.push_back(static_cast<char>(byte));
    if (byte == 0x00 || byte == 0xff) ++i;
  }
  throw Error(where + ": a malformed slice key");
}

Slice parse_slice(std::string_view bytes, const std::string& where) {
  Slice slice;
  proto::Reader reader(bytes);
  while (reader.next()) {
    std::string_view extent_bytes;
    if (reader.field() != 1 || !reader.read_bytes(extent_bytes)) {
      if (reader.ok()) reader.skip();
      continue;
    }
    proto::Reader extent(extent_bytes);
    uint64_t start = 0, length = static_cast<uint64_t>(-1);  // no length: the whole dimension
    while (extent.next()) extent.field() == 1 ? extent.read_varint(start) : extent.field() == 2 ? extent.read_varint(length)
                                                                                                 : extent.skip();
    if (!extent.ok()) throw Error(where + ": malformed slice: " + extent.error());
    slice.emplace_back(static_cast<int64_t>(start), static_cast<int64_t>(length));
    if (slice.size() > kMaxRank) throw Error(where + ": a slice of more than 254 dimensions");
  }
  if (!reader.ok()) throw Error(where + ": malformed slice: " + reader.error());
  return slice;
}

Tensor assemble_slices(const Checkpoint& checkpoint, const TensorEntry& entry, const std::string& where) {
  const int width = dtype_width(entry.dtype);
  if (width == 0) throw Error(where + ": a partitioned " + dtype_name(entry.dtype) + " variable is not supported");
  const auto found = checkpoint.slices_of.find(entry.key);
  const size_t stored = found == checkpoint.slices_of.end() ? 0 : found->second.size();
  if (stored != entry.slices.size())
    throw Error(where + ": " + std::to_string(entry.slices.size()) + " slices listed, " + std::to_string(stored) + " stored");
  // OrderedCode keeps numeric order, so the slice keys sort as their extents do.
  std::vector<Slice> specs = entry.slices;
  std::sort(specs.begin(), specs.end());
  std::vector<Tensor> parts;  // read first: each is bounded by its shard's real size
  uint64_t bytes = 0;
  for (const TensorEntry& part : found == checkpoint.slices_of.end() ? std::vector<TensorEntry>{} : found->second) {
    parts.push_back(read_tensor(checkpoint, part));
    bytes += parts.back().bytes.size();
  }
  if (bytes != static_cast<uint64_t>(entry.elements) * width) throw Error(where + ": the slices do not cover the variable");
  Tensor whole{entry.dtype, entry.shape, std::string(bytes, '\0'), {}};
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto [start, lengths] = place(specs[i], entry, found->second[i], where);
    copy_slice(parts[i].bytes, entry.shape, start, lengths, width, whole.bytes);
  }
  return whole;
}

}  // namespace mrcnn::tf
