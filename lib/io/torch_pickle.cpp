#include "io/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>

#include "core/error.h"

namespace mrcnn {
namespace {

// A value on the unpickler's stack. Only what torch.save writes is modelled; anything else
// becomes an Object that is carried along and ignored.
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Tensor, Object, Mark };
  Kind kind = Kind::None;
  int64_t integer = 0;
  double number = 0;
  std::string text;  // String, Bytes, Global ("module.name")
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;
  at::Tensor tensor;
};

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

at::ScalarType storage_dtype(const std::string& global, const std::string& source) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
  };
  const auto it = types.find(global);
  if (it == types.end()) throw Error(source + ": unsupported tensor storage type " + global);
  return it->second;
}

// Resolves a persistent id ('storage', type, key, location, numel, ...) to a 1-D storage tensor.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, std::string source, StorageLoader load_storage)
      : p_(data), end_(data + size), source_(std::move(source)), load_storage_(std::move(load_storage)) {}

  ValuePtr load();
  size_t consumed(const char* start) const { return static_cast<size_t>(p_ - start); }

 private:
  Error bad(const std::string& what) const { return Error(source_ + ": unreadable pickle data: " + what); }
  void need(size_t n) const {
    if (static_cast<size_t>(end_ - p_) < n) throw bad("truncated");
  }
  template <typename T>
  T read() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string read_bytes(size_t n) {
    need(n);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  std::string read_line() {
    const char* nl = static_cast<const char*>(std::memchr(p_, '\n', end_ - p_));
    if (!nl) throw bad("unterminated line");
    std::string s(p_, nl);
    p_ = nl + 1;
    return s;
  }
  ValuePtr pop() {
    if (stack_.empty()) throw bad("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_to_mark() {
    std::vector<ValuePtr> items;
    while (!stack_.empty() && stack_.back()->kind != Value::Kind::Mark) items.push_back(pop());
    if (stack_.empty()) throw bad("missing mark");
    stack_.pop_back();
    return {items.rbegin(), items.rend()};
  }
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent_load(const ValuePtr& pid);

  const char* p_;
  const char* end_;
  std::string source_;
  StorageLoader load_storage_;
  std::vector<ValuePtr> stack_;
  std::map<int64_t, ValuePtr> memo_;
};

ValuePtr Unpickler::persistent_load(const ValuePtr& pid) {
  if (pid->kind != Value::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->text != "storage")
    throw bad("unknown persistent id");
  const at::ScalarType dtype = storage_dtype(pid->items[1]->text, source_);
  auto v = make(Value::Kind::Tensor);
  v->tensor = load_storage_(pid->items[2]->text, dtype, pid->items[4]->integer);
  // Legacy files may add (view_key, offset, size): a slice of the root storage.
  if (pid->items.size() >= 6 && pid->items[5]->kind == Value::Kind::Tuple && pid->items[5]->items.size() == 3)
    v->tensor = v->tensor.narrow(0, pid->items[5]->items[1]->integer, pid->items[5]->items[2]->integer);
  return v;
}

ValuePtr Unpickler::reduce(const ValuePtr& callable, const ValuePtr& args) {
  const std::string& name = callable->text;
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    // (storage, storage_offset, size, stride, ...)
    const auto& a = args->items;
    if (a.size() < 4 || a[0]->kind != Value::Kind::Tensor) throw bad("bad tensor record");
    std::vector<int64_t> sizes, strides;
    for (const auto& s : a[2]->items) sizes.push_back(s->integer);
    for (const auto& s : a[3]->items) strides.push_back(s->integer);
    auto v = make(Value::Kind::Tensor);
    v->tensor = a[0]->tensor.as_strided(sizes, strides, a[1]->integer);
    return v;
  }
  if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
    return args->items.at(0);
  }
  if (name == "collections.OrderedDict" || name == "builtins.dict") {
    auto v = make(Value::Kind::Dict);
    return v;
  }
  auto v = make(Value::Kind::Object);
  v->text = name;
  return v;
}

ValuePtr Unpickler::load() {
  using K = Value::Kind;
  while (true) {
    const auto op = static_cast<unsigned char>(read<char>());
    switch (op) {
      case 0x80: read<uint8_t>(); break;                         // PROTO
      case 0x95: read<uint64_t>(); break;                        // FRAME
      case '.': return pop();                                    // STOP
      case '(': stack_.push_back(make(K::Mark)); break;          // MARK
      case '}': stack_.push_back(make(K::Dict)); break;          // EMPTY_DICT
      case ']': stack_.push_back(make(K::List)); break;          // EMPTY_LIST
      case ')': stack_.push_back(make(K::Tuple)); break;         // EMPTY_TUPLE
      case 'N': stack_.push_back(make(K::None)); break;          // NONE
      case 0x88:
      case 0x89: {                                               // NEWTRUE / NEWFALSE
        auto v = make(K::Bool);
        v->integer = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'J': case 'K': case 'M': {                            // BININT, BININT1, BININT2
        auto v = make(K::Int);
        v->integer = op == 'J' ? read<int32_t>() : op == 'K' ? read<uint8_t>() : read<uint16_t>();
        stack_.push_back(v);
        break;
      }
      case 0x8a: {                                               // LONG1
        const uint8_t n = read<uint8_t>();
        const std::string bytes = read_bytes(n);
        int64_t x = 0;
        for (size_t i = 0; i < n && i < 8; ++i) x |= static_cast<int64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
        if (n > 0 && n < 8 && (static_cast<uint8_t>(bytes[n - 1]) & 0x80)) x -= int64_t(1) << (8 * n);
        auto v = make(K::Int);
        v->integer = x;
        stack_.push_back(v);
        break;
      }
      case 'G': {                                                // BINFLOAT (big-endian)
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | read<uint8_t>();
        auto v = make(K::Float);
        std::memcpy(&v->number, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X': case 0x8c: case 0x8d: case 'B': case 'C': {      // strings and bytes
        const size_t n = op == 'X' || op == 'B' ? read<uint32_t>() : op == 0x8d ? read<uint64_t>() : read<uint8_t>();
        auto v = make(op == 'B' || op == 'C' ? K::Bytes : K::String);
        v->text = read_bytes(n);
        stack_.push_back(v);
        break;
      }
      case 'q': memo_[read<uint8_t>()] = stack_.at(stack_.size() - 1); break;   // BINPUT
      case 'r': memo_[read<uint32_t>()] = stack_.at(stack_.size() - 1); break;  // LONG_BINPUT
      case 0x94: memo_[static_cast<int64_t>(memo_.size())] = stack_.at(stack_.size() - 1); break;  // MEMOIZE
      case 'h': case 'j': {                                      // BINGET, LONG_BINGET
        const int64_t key = op == 'h' ? read<uint8_t>() : read<uint32_t>();
        const auto it = memo_.find(key);
        if (it == memo_.end()) throw bad("memo key missing");
        stack_.push_back(it->second);
        break;
      }
      case 'c': {                                                // GLOBAL
        auto v = make(K::Global);
        const std::string module = read_line();
        v->text = module + "." + read_line();
        stack_.push_back(v);
        break;
      }
      case 0x93: {                                               // STACK_GLOBAL
        const ValuePtr name = pop();
        const ValuePtr module = pop();
        auto v = make(K::Global);
        v->text = module->text + "." + name->text;
        stack_.push_back(v);
        break;
      }
      case 't': {                                                // TUPLE
        auto v = make(K::Tuple);
        v->items = pop_to_mark();
        stack_.push_back(v);
        break;
      }
      case 0x85: case 0x86: case 0x87: {                         // TUPLE1..3
        auto v = make(K::Tuple);
        v->items.resize(op - 0x84);
        for (size_t i = v->items.size(); i-- > 0;) v->items[i] = pop();
        stack_.push_back(v);
        break;
      }
      case 'a': {                                                // APPEND
        const ValuePtr item = pop();
        stack_.at(stack_.size() - 1)->items.push_back(item);
        break;
      }
      case 'e': {                                                // APPENDS
        auto items = pop_to_mark();
        auto& list = stack_.at(stack_.size() - 1)->items;
        list.insert(list.end(), items.begin(), items.end());
        break;
      }
      case 's': {                                                // SETITEM
        const ValuePtr value = pop();
        const ValuePtr key = pop();
        stack_.at(stack_.size() - 1)->entries.emplace_back(key, value);
        break;
      }
      case 'u': {                                                // SETITEMS
        auto items = pop_to_mark();
        auto& dict = stack_.at(stack_.size() - 1)->entries;
        for (size_t i = 0; i + 1 < items.size(); i += 2) dict.emplace_back(items[i], items[i + 1]);
        break;
      }
      case 'R': {                                                // REDUCE
        const ValuePtr args = pop();
        const ValuePtr callable = pop();
        stack_.push_back(reduce(callable, args));
        break;
      }
      case 0x81: {                                               // NEWOBJ
        const ValuePtr args = pop();
        const ValuePtr cls = pop();
        stack_.push_back(reduce(cls, args));
        break;
      }
      case 'b': pop(); break;                                    // BUILD: object state (e.g. _metadata) is not needed
      case 'Q': stack_.push_back(persistent_load(pop())); break; // BINPERSID
      case '0': pop(); break;                                    // POP
      default: throw bad("unsupported pickle opcode 0x" + std::to_string(op));
    }
  }
}

void collect(const ValuePtr& v, const std::string& prefix, std::vector<std::pair<std::string, at::Tensor>>& out) {
  if (v->kind == Value::Kind::Tensor) {
    out.emplace_back(prefix, v->tensor);
  } else if (v->kind == Value::Kind::Dict) {
    for (const auto& [key, value] : v->entries) {
      if (key->kind != Value::Kind::String) continue;
      collect(value, prefix.empty() ? key->text : prefix + "." + key->text, out);
    }
  }
}

std::vector<std::pair<std::string, at::Tensor>> read_zip(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  const auto [pickle, pickle_size] = reader.getRecord("data.pkl");
  std::map<std::string, at::Tensor> loaded;  // tensors that share a storage reference it once each
  Unpickler unpickler(static_cast<const char*>(pickle.get()), pickle_size, path,
                      [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
                        const auto cached = loaded.find(key);
                        if (cached != loaded.end()) return cached->second;
                        at::Tensor storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
                        const auto [data, size] = reader.getRecord("data/" + key);
                        if (size != storage.nbytes()) throw Error(path + ": storage " + key + " has the wrong size");
                        std::memcpy(storage.data_ptr(), data.get(), size);
                        loaded.emplace(key, storage);
                        return storage;
                      });
  std::vector<std::pair<std::string, at::Tensor>> out;
  collect(unpickler.load(), "", out);
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> read_legacy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const char* start = bytes.data();
  size_t offset = 0;
  std::map<std::string, at::Tensor> storages;
  const auto next_pickle = [&] {
    Unpickler u(start + offset, bytes.size() - offset, path, [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
      auto it = storages.find(key);
      if (it == storages.end()) it = storages.emplace(key, torch::empty({numel}, torch::TensorOptions().dtype(dtype))).first;
      return it->second;
    });
    ValuePtr v = u.load();
    offset += u.consumed(start + offset);
    return v;
  };
  next_pickle();  // magic number
  next_pickle();  // protocol version
  next_pickle();  // system info
  const ValuePtr object = next_pickle();
  const ValuePtr keys = next_pickle();
  // Then each storage's data, in the order of `keys`: its element count (int64), then the bytes.
  for (const auto& key : keys->items) {
    const auto it = storages.find(key->text);
    if (it == storages.end() || offset + 8 > bytes.size()) throw Error(path + ": truncated or inconsistent storage table");
    int64_t numel = 0;
    std::memcpy(&numel, start + offset, 8);
    offset += 8;
    const size_t nbytes = it->second.nbytes();
    if (numel != it->second.numel() || offset + nbytes > bytes.size())
      throw Error(path + ": storage " + key->text + " is truncated");
    std::memcpy(it->second.data_ptr(), start + offset, nbytes);
    offset += nbytes;
  }
  std::vector<std::pair<std::string, at::Tensor>> out;
  collect(object, "", out);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> read_torch_save_tensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (std::memcmp(magic, "PK\x03\x04", 4) == 0) {
    try {
      return read_zip(path);
    } catch (const c10::Error& e) {
      const std::string what = e.what();
      throw Error(path + ": damaged torch.save archive: " + what.substr(0, what.find('\n')));
    }
  }
  if (static_cast<unsigned char>(magic[0]) == 0x80) return read_legacy(path);
  throw Error(path + ": not a torch.save file");
}

}  // namespace mrcnn
