#include "io/weights_file.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
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

// The first bytes of a file, to tell formats apart.
std::string file_prefix(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + (std::filesystem::exists(path) ? "permission denied" : "no such file"));
  std::string prefix(n, '\0');
  in.read(prefix.data(), static_cast<std::streamsize>(n));
  prefix.resize(static_cast<size_t>(in.gcount()));
  return prefix;
}

}  // namespace

namespace {

// The header of a safetensors file, checked for size and JSON.
nlohmann::ordered_json read_safetensors_header(const std::string& path, uint64_t& header_size, uint64_t& file_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + (std::filesystem::exists(path) ? "permission denied" : "no such file"));
  file_size = std::filesystem::file_size(path);
  const auto bad = [&](const std::string& what) { return Error(path + ": not a valid safetensors file: " + what); };
  if (file_size < 8) throw bad("shorter than its 8-byte header length");
  in.read(reinterpret_cast<char*>(&header_size), 8);
  if (header_size > file_size - 8 || header_size > (100u << 20))
    throw bad("header length " + std::to_string(header_size) + " exceeds the file (" + std::to_string(file_size) +
              " bytes)");
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  try {
    return nlohmann::ordered_json::parse(header_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad(std::string("header is not JSON (") + e.what() + ")");
  }
}

}  // namespace

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  uint64_t header_size = 0, file_size = 0;
  const nlohmann::ordered_json header = read_safetensors_header(path, header_size, file_size);
  std::map<std::string, std::string> out;
  if (header.is_object() && header.contains("__metadata__") && header["__metadata__"].is_object())
    for (const auto& [key, value] : header["__metadata__"].items())
      if (value.is_string()) out[key] = value.get<std::string>();
  return out;
}

StateDict read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + (std::filesystem::exists(path) ? "permission denied" : "no such file"));
  const uint64_t file_size = std::filesystem::file_size(path);
  const auto bad = [&](const std::string& what) { return Error(path + ": not a valid safetensors file: " + what); };
  if (file_size < 8) throw bad("shorter than its 8-byte header length");
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);  // little-endian, as the format and x86/ARM are
  if (header_size > file_size - 8 || header_size > (100u << 20))
    throw bad("header length " + std::to_string(header_size) + " exceeds the file (" + std::to_string(file_size) +
              " bytes)");
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(header_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad(std::string("header is not JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_size;

  // Check every entry against the file before reading any tensor.
  struct Entry {
    std::string name;
    const DtypeInfo* dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = "tensor '" + name + "': ";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw bad(where + "expected dtype, shape and data_offsets");
    if (!info["dtype"].is_string()) throw bad(where + "dtype is not a string");
    const DtypeInfo* dtype = dtype_by_name(info["dtype"].get<std::string>());
    if (!dtype) throw bad(where + "unsupported dtype " + info["dtype"].dump());
    Entry e{name, dtype, {}, 0, 0};
    uint64_t numel = 1;
    if (!info["shape"].is_array()) throw bad(where + "shape is not a list");
    for (const auto& dim : info["shape"]) {
      if (!dim.is_number_unsigned()) throw bad(where + "shape has a non-integer or negative entry " + dim.dump());
      e.shape.push_back(dim.get<int64_t>());
      numel *= dim.get<uint64_t>();
    }
    const auto& offsets = info["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw bad(where + "data_offsets must be two non-negative integers");
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      throw bad(where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] fall outside the " + std::to_string(data_size) + " data bytes (file truncated?)");
    if (e.end - e.begin != numel * dtype->bytes)
      throw bad(where + "holds " + std::to_string(e.end - e.begin) + " bytes but its shape and dtype need " +
                std::to_string(numel * dtype->bytes));
    entries.push_back(std::move(e));
  }

  StateDict tensors;
  for (const auto& e : entries) {
    at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    in.seekg(static_cast<std::streamoff>(8 + header_size + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) throw Error(path + ": read error in tensor '" + e.name + "'");
    tensors.emplace_back(e.name, t);
  }
  return tensors;
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

StateDict read_weights_file(const std::string& path) {
  const std::string prefix = file_prefix(path, 4);
  if (prefix.size() == 4 && (prefix == std::string("PK\x03\x04", 4) || static_cast<unsigned char>(prefix[0]) == 0x80))
    return read_torch_state_dict(path);
  return read_safetensors(path);
}

}  // namespace mrcnn
