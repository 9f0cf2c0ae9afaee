#include "io/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/zip_directory.h"

namespace mrcnn {
namespace {

// Limits on what an untrusted pickle may build. A state dict of maskrcnn_resnet50_fpn with its Adam
// state pushes about 24,000 items and nests dicts 3 deep.
constexpr size_t kMaxItems = size_t(1) << 21;      // stack pushes (new values and memo references), memo entries
constexpr size_t kMaxNesting = 1000;               // dicts within dicts on the way to a tensor
constexpr size_t kMaxNameBytes = size_t(64) << 20;  // key bytes joined into tensor names, all together
constexpr size_t kMaxGlobalName = 4096;            // "module.name" of a GLOBAL

// A value on the unpickler's stack. Only what torch.save writes is modelled; anything else
// becomes an Object that is carried along and ignored.
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor, Object, Mark };
  Kind kind = Kind::None;
  int64_t integer = 0;  // Int, Bool; Tensor: the storage offset
  double number = 0;
  std::string text;     // String, Bytes, Global ("module.name"), Storage and Tensor: the storage key
  std::vector<Value*> items;  // Tuple, List; Tensor: its storage, sizes and strides
  std::vector<std::pair<Value*, Value*>> entries;  // Dict
  at::Tensor storage;   // Storage: 1-D, the file's bytes
  bool on_path = false;  // while the walk is inside this dict (a dict that contains itself)
};

// Owns every value read from one file. Values point at each other with plain pointers: shared and
// self-containing structures (which the memo lets a pickle build) need no reference counting, and
// destroying a million-deep nest is a flat loop over the deque, never a recursion.
using Arena = std::deque<Value>;

at::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
  };
  const auto it = types.find(global);
  if (it == types.end()) throw std::invalid_argument("unsupported tensor storage type " + text_preview(global));
  return it->second;
}

// Bytes of numel elements of dtype, or nullopt when negative or beyond 64 bits.
std::optional<uint64_t> storage_bytes(int64_t numel, at::ScalarType dtype) {
  uint64_t bytes = 0;
  if (numel < 0 || __builtin_mul_overflow(static_cast<uint64_t>(numel), c10::elementSize(dtype), &bytes))
    return std::nullopt;
  return bytes;
}

// Makes the 1-D storage of a persistent id ('storage', type, key, location, numel, ...). May throw
// std::invalid_argument with what is wrong; the unpickler adds where.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

class Unpickler {
 public:
  // data is one pickle; offsets in messages count from `base` (its place in the file).
  Unpickler(std::string_view data, size_t base, std::string source, Arena& arena, StorageLoader load_storage)
      : start_(data.data()), p_(data.data()), end_(data.data() + data.size()), base_(base),
        source_(std::move(source)), arena_(arena), load_storage_(std::move(load_storage)) {}

  Value* load();
  size_t consumed() const { return static_cast<size_t>(p_ - start_); }

 private:
  Error bad(const std::string& what) const {
    char op[16] = "end of data";
    if (op_ < end_) std::snprintf(op, sizeof op, "opcode 0x%02x", static_cast<unsigned char>(*op_));
    return Error(source_ + ": unreadable pickle data at byte " + std::to_string(base_ + (op_ - start_)) + " (" +
                 op + "): " + what);
  }
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
  std::string read_bytes(uint64_t n) {
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
  Value* make(Value::Kind kind) {
    arena_.emplace_back().kind = kind;
    return &arena_.back();
  }
  void push(Value* v) {
    if (++pushed_ > kMaxItems) throw bad("more than " + std::to_string(kMaxItems) + " items (not a state dict)");
    stack_.push_back(v);
  }
  Value* top() const {
    if (stack_.empty()) throw bad("the stack is empty");
    return stack_.back();
  }
  Value* pop() {
    Value* v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<Value*> pop_to_mark() {
    size_t mark = stack_.size();
    while (mark > 0 && stack_[mark - 1]->kind != Value::Kind::Mark) --mark;
    if (mark == 0) throw bad("no MARK on the stack");
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark - 1);
    return items;
  }
  void memo_put(int64_t key) {
    if (memo_.size() >= kMaxItems && !memo_.count(key))
      throw bad("more than " + std::to_string(kMaxItems) + " memo entries");
    memo_[key] = top();
  }
  Value* memo_get(int64_t key) const {
    const auto it = memo_.find(key);
    if (it == memo_.end()) throw bad("memo key " + std::to_string(key) + " was never stored");
    return it->second;
  }
  Value* global(const std::string& module, const std::string& name) {
    if (module.size() + name.size() + 1 > kMaxGlobalName) throw bad("global name longer than 4096 bytes");
    Value* v = make(Value::Kind::Global);
    v->text = module + "." + name;
    return v;
  }
  Value* reduce(Value* callable, Value* args);
  Value* rebuild_tensor(Value* args);
  Value* persistent_load(Value* pid);
  bool step(unsigned char op);

  const char* start_;
  const char* p_;
  const char* op_ = nullptr;  // the opcode being run
  const char* end_;
  size_t base_;
  std::string source_;
  Arena& arena_;
  StorageLoader load_storage_;
  std::vector<Value*> stack_;
  std::map<int64_t, Value*> memo_;
  size_t pushed_ = 0;
};

bool is(const Value* v, Value::Kind kind) { return v->kind == kind; }

bool is_int_tuple(const Value* v) {
  if (!is(v, Value::Kind::Tuple)) return false;
  for (const Value* item : v->items)
    if (!is(item, Value::Kind::Int)) return false;
  return true;
}

Value* Unpickler::persistent_load(Value* pid) {
  using K = Value::Kind;
  const auto& id = pid->items;
  if (!is(pid, K::Tuple) || id.size() < 5 || !is(id[0], K::String) || id[0]->text != "storage" ||
      !is(id[1], K::Global) || !is(id[2], K::String) || !is(id[4], K::Int))
    throw bad("not a torch storage reference");
  Value* v = make(K::Storage);
  v->text = id[2]->text;
  try {
    v->storage = load_storage_(id[2]->text, storage_dtype(id[1]->text), id[4]->integer);
  } catch (const std::invalid_argument& e) {
    throw bad("storage '" + text_preview(id[2]->text) + "': " + e.what());
  }
  // Legacy files may add (view_key, offset, size): a slice of the root storage.
  if (id.size() >= 6 && is(id[5], K::Tuple) && id[5]->items.size() == 3) {
    const auto& view = id[5]->items;
    const int64_t numel = v->storage.numel();
    if (!is(view[1], K::Int) || !is(view[2], K::Int) || view[1]->integer < 0 || view[2]->integer < 0 ||
        view[1]->integer > numel || view[2]->integer > numel - view[1]->integer)
      throw bad("storage '" + text_preview(v->text) + "': its view lies outside the storage's " +
                std::to_string(numel) + " elements");
    v->storage = v->storage.narrow(0, view[1]->integer, view[2]->integer);
  }
  return v;
}

// (storage, storage_offset, size, stride, ...): checked for types here, for fitting its storage
// when the tensor's name is known (tensor_at).
Value* Unpickler::rebuild_tensor(Value* args) {
  using K = Value::Kind;
  const auto& a = args->items;
  if (!is(args, K::Tuple) || a.size() < 4 || !is(a[0], K::Storage) || !is(a[1], K::Int) || !is_int_tuple(a[2]) ||
      !is_int_tuple(a[3]) || a[2]->items.size() != a[3]->items.size())
    throw bad("a tensor record is not (storage, offset, sizes, strides)");
  Value* v = make(K::Tensor);
  v->text = a[0]->text;
  v->integer = a[1]->integer;
  v->items = {a[0], a[2], a[3]};
  return v;
}

Value* Unpickler::reduce(Value* callable, Value* args) {
  const std::string& name = callable->text;
  if (!is(callable, Value::Kind::Global)) return make(Value::Kind::Object);
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") return rebuild_tensor(args);
  if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
    if (!is(args, Value::Kind::Tuple) || args->items.empty()) throw bad("a parameter record without its tensor");
    return args->items[0];
  }
  if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Value::Kind::Dict);
  Value* v = make(Value::Kind::Object);
  v->text = name;
  return v;
}

Value* Unpickler::load() {
  while (true) {
    op_ = p_;
    const auto op = static_cast<unsigned char>(read<char>());
    if (op == '.') return pop();  // STOP
    if (!step(op)) throw bad("unsupported pickle opcode");
  }
}

// Runs one opcode other than STOP; false for an opcode torch.save does not write.
bool Unpickler::step(unsigned char op) {
  using K = Value::Kind;
  switch (op) {
    case 0x80: read<uint8_t>(); return true;                   // PROTO
    case 0x95: read<uint64_t>(); return true;                  // FRAME
    case '(': push(make(K::Mark)); return true;                // MARK
    case '}': push(make(K::Dict)); return true;                // EMPTY_DICT
    case ']': push(make(K::List)); return true;                // EMPTY_LIST
    case ')': push(make(K::Tuple)); return true;               // EMPTY_TUPLE
    case 'N': push(make(K::None)); return true;                // NONE
    case 0x88: case 0x89: {                                    // NEWTRUE / NEWFALSE
      Value* v = make(K::Bool);
      v->integer = op == 0x88;
      push(v);
      return true;
    }
    case 'J': case 'K': case 'M': {                            // BININT, BININT1, BININT2
      Value* v = make(K::Int);
      v->integer = op == 'J' ? read<int32_t>() : op == 'K' ? read<uint8_t>() : read<uint16_t>();
      push(v);
      return true;
    }
    case 0x8a: {                                               // LONG1
      const uint8_t n = read<uint8_t>();
      const std::string bytes = read_bytes(n);
      uint64_t bits = 0;  // the low 64 bits of wider integers (the legacy format's magic number)
      for (size_t i = 0; i < n && i < 8; ++i) bits |= uint64_t(static_cast<uint8_t>(bytes[i])) << (8 * i);
      if (n > 0 && n < 8 && (static_cast<uint8_t>(bytes[n - 1]) & 0x80)) bits -= uint64_t(1) << (8 * n);
      Value* v = make(K::Int);
      v->integer = static_cast<int64_t>(bits);
      push(v);
      return true;
    }
    case 'G': {                                                // BINFLOAT (big-endian)
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | read<uint8_t>();
      Value* v = make(K::Float);
      std::memcpy(&v->number, &bits, 8);
      push(v);
      return true;
    }
    case 'X': case 0x8c: case 0x8d: case 'B': case 'C': {      // strings and bytes
      const uint64_t n = op == 'X' || op == 'B' ? read<uint32_t>() : op == 0x8d ? read<uint64_t>() : read<uint8_t>();
      Value* v = make(op == 'B' || op == 'C' ? K::Bytes : K::String);
      v->text = read_bytes(n);
      push(v);
      return true;
    }
    case 'q': memo_put(read<uint8_t>()); return true;          // BINPUT
    case 'r': memo_put(read<uint32_t>()); return true;         // LONG_BINPUT
    case 0x94: memo_put(static_cast<int64_t>(memo_.size())); return true;  // MEMOIZE
    case 'h': push(memo_get(read<uint8_t>())); return true;    // BINGET
    case 'j': push(memo_get(read<uint32_t>())); return true;   // LONG_BINGET
    case 'c': {                                                // GLOBAL
      const std::string module = read_line();
      push(global(module, read_line()));
      return true;
    }
    case 0x93: {                                               // STACK_GLOBAL
      const Value* name = pop();
      const Value* module = pop();
      push(global(module->text, name->text));
      return true;
    }
    case 't': {                                                // TUPLE
      Value* v = make(K::Tuple);
      v->items = pop_to_mark();
      push(v);
      return true;
    }
    case 0x85: case 0x86: case 0x87: {                         // TUPLE1..3
      Value* v = make(K::Tuple);
      v->items.resize(op - 0x84);
      for (size_t i = v->items.size(); i-- > 0;) v->items[i] = pop();
      push(v);
      return true;
    }
    case 'a': {                                                // APPEND
      Value* item = pop();
      top()->items.push_back(item);
      return true;
    }
    case 'e': {                                                // APPENDS
      const std::vector<Value*> items = pop_to_mark();
      auto& list = top()->items;
      list.insert(list.end(), items.begin(), items.end());
      return true;
    }
    case 's': {                                                // SETITEM
      Value* value = pop();
      Value* key = pop();
      top()->entries.emplace_back(key, value);
      return true;
    }
    case 'u': {                                                // SETITEMS
      const std::vector<Value*> items = pop_to_mark();
      auto& dict = top()->entries;
      for (size_t i = 0; i + 1 < items.size(); i += 2) dict.emplace_back(items[i], items[i + 1]);
      return true;
    }
    case 'R': case 0x81: {                                     // REDUCE, NEWOBJ
      Value* args = pop();
      Value* callable = pop();
      push(reduce(callable, args));
      return true;
    }
    case 'b': pop(); return true;                              // BUILD: object state (e.g. _metadata) is not needed
    case 'Q': push(persistent_load(pop())); return true;       // BINPERSID
    case '0': pop(); return true;                              // POP
    default: return false;
  }
}

// The view a tensor record describes, after checking that it lies inside its storage.
at::Tensor tensor_at(const Value& record, const std::string& name) {
  const at::Tensor& storage = record.items[0]->storage;
  std::vector<int64_t> sizes, strides;
  for (const Value* s : record.items[1]->items) sizes.push_back(s->integer);
  for (const Value* s : record.items[2]->items) strides.push_back(s->integer);
  // The last element's index: offset + sum (size - 1) * stride, in 64 bits without overflow.
  int64_t last = record.integer;
  bool fits = last >= 0;
  bool empty = false;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) fits = false;
    if (sizes[d] == 0) empty = true;
  }
  for (size_t d = 0; fits && !empty && d < sizes.size(); ++d) {
    int64_t reach = 0;
    fits = !__builtin_mul_overflow(sizes[d] - 1, strides[d], &reach) && !__builtin_add_overflow(last, reach, &last);
  }
  if (!fits || (!empty && last >= storage.numel()) || (empty && record.integer > storage.numel())) {
    std::ostringstream what;
    what << "tensor '" << text_preview(name) << "': sizes " << at::IntArrayRef(sizes) << ", strides "
         << at::IntArrayRef(strides) << " and offset " << record.integer << " do not fit its storage '"
         << text_preview(record.text) << "' of " << storage.numel() << " elements";
    throw std::invalid_argument(what.str());
  }
  return storage.as_strided(sizes, strides, storage.storage_offset() + record.integer);  // a legacy view's offset too
}

// Every tensor reachable from root through string-keyed dicts, named by its key path, in file
// order. Iterative, with limits: the walk meets whatever shape the pickle built (deep nests,
// dicts that contain themselves, one dict shared a million times over).
std::vector<std::pair<std::string, at::Tensor>> tensors_in(Value* root) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (root->kind == Value::Kind::Tensor) out.emplace_back("", tensor_at(*root, ""));
  if (root->kind != Value::Kind::Dict) return out;
  struct Frame {
    Value* dict;
    size_t next;        // entry to visit
    size_t name_size;   // of `name` when this dict was entered
  };
  std::vector<Frame> path = {{root, 0, 0}};
  root->on_path = true;
  std::string name;
  size_t name_bytes = 0, visits = 0;
  while (!path.empty()) {
    Frame& frame = path.back();
    if (frame.next == frame.dict->entries.size()) {
      frame.dict->on_path = false;
      name.resize(frame.name_size);
      path.pop_back();
      continue;
    }
    const auto [key, value] = frame.dict->entries[frame.next++];
    if (key->kind != Value::Kind::String || (value->kind != Value::Kind::Tensor && value->kind != Value::Kind::Dict))
      continue;
    if (++visits > kMaxItems)
      throw std::invalid_argument("more than " + std::to_string(kMaxItems) +
                                  " dict entries to walk (dicts shared over and over)");
    name.resize(frame.name_size);
    if (!name.empty()) name += '.';
    name += key->text;
    name_bytes += name.size();
    if (name_bytes > kMaxNameBytes) throw std::invalid_argument("its key paths total more than 64 MiB");
    if (value->kind == Value::Kind::Tensor) {
      out.emplace_back(name, tensor_at(*value, name));
      continue;
    }
    if (value->on_path) throw std::invalid_argument("dict '" + text_preview(name) + "' contains itself");
    if (path.size() >= kMaxNesting)
      throw std::invalid_argument("dicts nested deeper than " + std::to_string(kMaxNesting) + " levels");
    value->on_path = true;
    path.push_back({value, 0, name.size()});
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> read_zip(const std::string& path) {
  const uint64_t file_size = std::filesystem::file_size(path);
  // libtorch's reader extracts small records (the version) as it opens the archive, allocating
  // what the directory claims: every claim is checked against the file first.
  std::vector<ZipEntry> entries;
  try {
    entries = read_zip_directory(path);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("damaged torch.save file: ") + e.what());
  }
  for (const ZipEntry& entry : entries)
    if (entry.uncompressed_size > file_size)
      throw std::invalid_argument("record " + text_preview(entry.name) + " claims " +
                                  std::to_string(entry.uncompressed_size) + " bytes, more than the file's " +
                                  std::to_string(file_size));
  caffe2::serialize::PyTorchStreamReader reader(path);
  // Records stored as torch.save writes them (uncompressed) lie inside the file; checked before
  // anything is allocated for them.
  const auto record_size = [&](const std::string& name) {
    if (!reader.hasRecord(name)) throw std::invalid_argument("record " + name + " is missing");
    const size_t size = reader.getRecordSize(name);
    if (size > file_size) throw std::invalid_argument("record " + name + " claims " + std::to_string(size) +
                                                      " bytes, more than the file's " + std::to_string(file_size));
    return size;
  };
  std::string pickle(record_size("data.pkl"), '\0');
  reader.getRecord("data.pkl", pickle.data(), pickle.size());
  Arena arena;
  std::map<std::string, at::Tensor> loaded;  // tensors that share a storage reference it once each
  uint64_t claimed = 0;                      // bytes of all storages together: at most the file's
  Unpickler unpickler(pickle, 0, path + " (data.pkl)", arena,
                      [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
                        const auto cached = loaded.find(key);
                        if (cached != loaded.end()) return cached->second;
                        const size_t size = record_size("data/" + key);
                        if (storage_bytes(numel, dtype) != size)
                          throw std::invalid_argument(std::to_string(numel) + " elements do not fill its " +
                                                      std::to_string(size) + " bytes");
                        if (size > file_size - claimed)
                          throw std::invalid_argument("the storages claim more bytes than the file holds");
                        claimed += size;
                        at::Tensor storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
                        reader.getRecord("data/" + key, storage.data_ptr(), size);
                        loaded.emplace(key, storage);
                        return storage;
                      });
  return tensors_in(unpickler.load());
}

std::vector<std::pair<std::string, at::Tensor>> read_legacy(const std::string& path) {
  const std::string bytes = read_text_file(path);  // read whole: pickles and storages follow each other
  size_t offset = 0;
  Arena arena;
  std::map<std::string, at::Tensor> storages;
  uint64_t claimed = 0;  // bytes of all storages together: their data must be in the file
  const auto next_pickle = [&] {
    Unpickler u(std::string_view(bytes).substr(offset), offset, path, arena,
                [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
                  auto it = storages.find(key);
                  if (it != storages.end()) return it->second;
                  const auto size = storage_bytes(numel, dtype);
                  if (!size || *size > bytes.size() - claimed)
                    throw std::invalid_argument(std::to_string(numel) + " elements cannot be in a file of " +
                                                std::to_string(bytes.size()) + " bytes");
                  claimed += *size;
                  const at::Tensor storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
                  return storages.emplace(key, storage).first->second;
                });
    Value* v = u.load();
    offset += u.consumed();
    return v;
  };
  next_pickle();  // magic number
  next_pickle();  // protocol version
  next_pickle();  // system info
  Value* object = next_pickle();
  const Value* keys = next_pickle();
  if (keys->kind != Value::Kind::List) throw Error(path + ": the storage table is not a list of keys");
  // Then each storage's data, in the order of `keys`: its element count (int64), then the bytes.
  for (const Value* key : keys->items) {
    const auto it = storages.find(key->text);
    if (key->kind != Value::Kind::String || it == storages.end() || offset + 8 > bytes.size())
      throw Error(path + ": truncated or inconsistent storage table");
    int64_t numel = 0;
    std::memcpy(&numel, bytes.data() + offset, 8);
    offset += 8;
    const size_t nbytes = it->second.nbytes();
    if (numel != it->second.numel() || nbytes > bytes.size() - offset)
      throw Error(path + ": storage " + text_preview(key->text) + " is truncated");
    std::memcpy(it->second.data_ptr(), bytes.data() + offset, nbytes);
    offset += nbytes;
  }
  return tensors_in(object);
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> read_torch_save_tensors(const std::string& path) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  const bool zip = std::memcmp(magic, "PK\x03\x04", 4) == 0;
  if (!zip && static_cast<unsigned char>(magic[0]) != 0x80) throw Error(path + ": not a torch.save file");
  // The one place where what goes wrong inside (libtorch, allocation, our checks) becomes an Error
  // naming the file.
  try {
    return zip ? read_zip(path) : read_legacy(path);
  } catch (const std::invalid_argument& e) {
    throw Error(path + ": " + e.what());
  } catch (const c10::Error& e) {
    const std::string what = e.what();
    throw Error(path + ": damaged torch.save file: " + text_preview(what.substr(0, what.find('\n')), 200));
  } catch (const std::bad_alloc&) {
    throw Error(path + ": its tensors do not fit in memory");
  } catch (const std::length_error&) {
    throw Error(path + ": its tensors do not fit in memory");
  }
}

}  // namespace mrcnn
