#include "io/weights_file.h"

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/torch_pickle.h"

namespace mrcnn {
namespace {

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

// The first bytes of a regular file, to tell formats apart.
std::string file_prefix(const std::string& path, size_t n) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: permission denied");
  std::string prefix(n, '\0');
  in.read(prefix.data(), static_cast<std::streamsize>(n));
  prefix.resize(static_cast<size_t>(in.gcount()));
  return prefix;
}

// A safetensors header as read from its file, with the size of the data that follows it.
struct SafetensorsHeader {
  Json json;
  uint64_t size = 0;       // of the JSON text, after the 8-byte length
  uint64_t data_size = 0;  // bytes after the header
};

Error not_safetensors(const std::string& path, const std::string& what) {
  return Error(path + ": not a valid safetensors file: " + what);
}

// The header, its length checked against the file before anything is allocated for it.
SafetensorsHeader read_safetensors_header(const std::string& path, std::ifstream& in) {
  require_regular_file(path);
  in.open(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: permission denied");
  const uint64_t file_size = std::filesystem::file_size(path);
  if (file_size < 8) throw not_safetensors(path, "shorter than its 8-byte header length");
  SafetensorsHeader header;
  in.read(reinterpret_cast<char*>(&header.size), 8);  // little-endian, as the format and x86/ARM are
  if (header.size > file_size - 8 || header.size > (100u << 20))
    throw not_safetensors(path, "header length " + std::to_string(header.size) + " exceeds the file (" +
                                    std::to_string(file_size) + " bytes) or 100 MiB");
  std::string text(header.size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header.size));
  if (!in) throw Error(path + ": cannot read the header");
  header.json = parse_json(text, path + " (header)");
  if (!header.json.is_object()) throw not_safetensors(path, "header is not a JSON object");
  header.data_size = file_size - 8 - header.size;
  return header;
}

// One tensor's entry of a safetensors header.
struct SafetensorsEntry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // in the data after the header
};

// Checks an entry against the data it points into: every product overflow-checked, since a
// shape's element count is what sizes the allocation.
SafetensorsEntry safetensors_entry(const std::string& path, const std::string& name, const Json& info,
                                   uint64_t data_size) {
  const std::string where = "tensor '" + text_preview(name) + "': ";
  const auto bad = [&](const std::string& what) { return not_safetensors(path, where + what); };
  if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
    throw bad("expected dtype, shape and data_offsets");
  if (!info["dtype"].is_string()) throw bad("dtype is not a string");
  SafetensorsEntry e{name, dtype_by_name(info["dtype"].get<std::string>()), {}, 0, 0};
  if (!e.dtype) throw bad("unsupported dtype " + json_preview(info["dtype"]));
  if (!info["shape"].is_array()) throw bad("shape is not a list");
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& dim : info["shape"]) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > uint64_t(INT64_MAX))
      throw bad("shape has an entry that is not an integer from 0 to 2^63-1: " + json_preview(dim));
    e.shape.push_back(dim.get<int64_t>());
    overflow |= __builtin_mul_overflow(numel, dim.get<uint64_t>(), &numel);
  }
  uint64_t bytes = 0;
  overflow |= __builtin_mul_overflow(numel, e.dtype->bytes, &bytes);
  if (overflow) throw bad("shape " + json_preview(info["shape"]) + " has more elements than 64 bits count");
  const auto& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw bad("data_offsets must be two non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_size)
    throw bad("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] fall outside the " +
              std::to_string(data_size) + " data bytes (file truncated?)");
  if (e.end - e.begin != bytes)
    throw bad("holds " + std::to_string(e.end - e.begin) + " bytes but its shape and dtype need " +
              std::to_string(bytes));
  return e;
}

StateDict read_safetensors_tensors(const std::string& path) {
  std::ifstream in;
  const SafetensorsHeader header = read_safetensors_header(path, in);
  // Every entry is checked against the file before any tensor is read.
  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, info] : header.json.items())
    if (name != "__metadata__") entries.push_back(safetensors_entry(path, name, info, header.data_size));
  StateDict tensors;
  for (const auto& e : entries) {
    at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    in.seekg(static_cast<std::streamoff>(8 + header.size + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) throw Error(path + ": read error in tensor '" + text_preview(e.name) + "'");
    tensors.emplace_back(e.name, t);
  }
  return tensors;
}

// Runs a reader of path, turning what libtorch and the allocator throw into an Error naming the file.
template <typename Read>
auto with_file_errors(const std::string& path, Read read) {
  try {
    return read();
  } catch (const c10::Error& e) {
    const std::string what = e.what();
    throw Error(path + ": cannot load: " + text_preview(what.substr(0, what.find('\n')), 200));
  } catch (const std::bad_alloc&) {
    throw Error(path + ": its tensors do not fit in memory");
  } catch (const std::filesystem::filesystem_error& e) {
    throw Error(path + ": cannot read: " + e.code().message());
  }
}

}  // namespace

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  std::ifstream in;
  const Json header = with_file_errors(path, [&] { return read_safetensors_header(path, in).json; });
  std::map<std::string, std::string> out;
  if (header.contains("__metadata__") && header["__metadata__"].is_object())
    for (const auto& [key, value] : header["__metadata__"].items())
      if (value.is_string()) out[key] = value.get<std::string>();
  return out;
}

StateDict read_safetensors(const std::string& path) {
  return with_file_errors(path, [&] { return read_safetensors_tensors(path); });
}

void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor t = tensor.detach().cpu().contiguous();
    const DtypeInfo* dtype = dtype_by_type(t.scalar_type());
    if (!dtype) throw Error(path + ": cannot store tensor '" + name + "' of type " + c10::toString(t.scalar_type()));
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype->bytes;
    header[name] = {{"dtype", dtype->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(t);
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  const uint64_t header_size = header_text.size();
  // Written piece by piece: a checkpoint never holds a second copy of the model in memory.
  std::vector<std::string_view> pieces = {{reinterpret_cast<const char*>(&header_size), 8}, header_text};
  for (const auto& t : contiguous) pieces.emplace_back(static_cast<const char*>(t.data_ptr()), t.nbytes());
  write_file_atomic(path, pieces);
}

StateDict read_torch_state_dict(const std::string& path) {
  StateDict tensors = read_torch_save_tensors(path);
  if (tensors.empty()) throw Error(path + ": holds no tensors");
  // Training checkpoints often wrap the weights: {"model": state_dict, "optimizer": ...}.
  for (const std::string wrapper : {"model.", "state_dict."}) {
    StateDict inner;
    for (const auto& [name, tensor] : tensors)
      if (name.rfind(wrapper, 0) == 0) inner.emplace_back(name.substr(wrapper.size()), tensor);
    if (!inner.empty()) return inner;
  }
  return tensors;
}

namespace {

// A safetensors file starts with its header's length, little-endian, then the header's '{'. That
// length's low byte can be anything, 0x80 and 'P' included, so this is checked before the torch
// signatures (zip "PK\3\4", pickle protocol 0x80 N) that a length byte could imitate.
bool looks_like_safetensors(const std::string& path, const std::string& prefix) {
  if (prefix.size() < 9 || prefix[8] != '{') return false;
  uint64_t header_size = 0;
  std::memcpy(&header_size, prefix.data(), 8);
  return header_size <= std::filesystem::file_size(path) - 8;
}

bool looks_like_torch_save(const std::string& prefix) {
  if (prefix.size() >= 4 && prefix.compare(0, 4, std::string("PK\x03\x04", 4)) == 0) return true;
  return prefix.size() >= 2 && static_cast<unsigned char>(prefix[0]) == 0x80 && prefix[1] >= 2 && prefix[1] <= 5;
}

}  // namespace

StateDict read_weights_file(const std::string& path) {
  const std::string prefix = file_prefix(path, 9);
  if (!looks_like_safetensors(path, prefix) && looks_like_torch_save(prefix)) return read_torch_state_dict(path);
  return read_safetensors(path);
}

}  // namespace mrcnn
