#include "io/json_tape.h"

#include <charconv>
#include <cstring>

#include "io/json_file.h"

namespace mrcnn {

// Reads text into a tape in one pass without recursion. It accepts only what nlohmann's parser
// accepts, with the same values; anything else (including what it leaves to nlohmann) ends the
// scan with false, so that errors keep nlohmann's words and positions.
class JsonScanner {
 public:
  explicit JsonScanner(JsonTape& tape) : tape_(tape), p_(tape.text_.data()), end_(p_ + tape.text_.size()) {}

  bool run() {
    tape_.nodes_.reserve(tape_.text_.size() / 6 + 16);
    if (!value()) return false;
    while (!open_.empty()) {
      if (!after_value()) return false;
    }
    skip_space();
    return p_ == end_;
  }

 private:
  using Kind = JsonTape::Kind;

  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool push(Kind kind, uint32_t length = 0) {
    if (tape_.nodes_.size() >= UINT32_MAX) return false;
    JsonTape::Node node{};
    node.kind = kind;
    node.length = length;
    tape_.nodes_.push_back(node);
    return true;
  }
  JsonTape::Node& last() { return tape_.nodes_.back(); }

  // One value; a container is opened and left for after_value to fill.
  bool value() {
    skip_space();
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return open(Kind::Object, '}');
      case '[': return open(Kind::Array, ']');
      case '"': return string();
      case 't': return literal("true", Kind::True);
      case 'f': return literal("false", Kind::False);
      case 'n': return literal("null", Kind::Null);
      default: return number();
    }
  }

  bool open(Kind kind, char closing) {
    if (open_.size() >= kMaxJsonDepth || !push(kind)) return false;
    open_.push_back(static_cast<uint32_t>(tape_.nodes_.size() - 1));
    ++p_;
    skip_space();
    if (p_ < end_ && *p_ == closing) {
      ++p_;
      return close();
    }
    return kind == Kind::Array ? value() : member();
  }
  // A key, its colon and its value.
  bool member() {
    skip_space();
    if (p_ == end_ || *p_ != '"' || !string()) return false;
    skip_space();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    return value();
  }
  // Closes the innermost container; its parent (if any) has one more member.
  bool close() {
    JsonTape::Node& container = tape_.nodes_[open_.back()];
    container.end = static_cast<uint32_t>(tape_.nodes_.size());
    open_.pop_back();
    return true;
  }
  // After a complete value inside the innermost open container: a comma and the next, or its end.
  bool after_value() {
    JsonTape::Node& container = tape_.nodes_[open_.back()];
    ++container.length;
    const bool object = container.kind == Kind::Object;
    skip_space();
    if (p_ == end_) return false;
    const char c = *p_++;
    if (c == ',') return object ? member() : value();
    if (c != (object ? '}' : ']')) return false;
    return close();
  }

  bool literal(const char* word, Kind kind) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return push(kind);
  }

  bool number();
  bool string();
  bool escape(std::string& out);
  bool utf8_sequence();

  JsonTape& tape_;
  const char* p_;
  const char* end_;
  std::vector<uint32_t> open_;  // the open containers, innermost last
};

// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, then as nlohmann types it: an integer that fits
// 64 bits (signed when negative), else a float.
bool JsonScanner::number() {
  const char* start = p_;
  const bool negative = p_ < end_ && *p_ == '-';
  if (negative) ++p_;
  const auto digits = [&] {
    const char* first = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ - first;
  };
  const char* int_start = p_;
  const auto int_digits = digits();
  if (int_digits == 0 || (*int_start == '0' && int_digits > 1)) return false;
  bool integer = true;
  if (p_ < end_ && *p_ == '.') {
    ++p_;
    if (digits() == 0) return false;
    integer = false;
  }
  if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (digits() == 0) return false;
    integer = false;
  }
  if (integer && int_digits <= 20) {
    uint64_t magnitude = 0;
    bool fits = true;
    for (const char* d = int_start; d < p_; ++d)
      fits = fits && !__builtin_mul_overflow(magnitude, 10, &magnitude) &&
             !__builtin_add_overflow(magnitude, static_cast<uint64_t>(*d - '0'), &magnitude);
    if (fits && !negative) {
      if (!push(Kind::Unsigned)) return false;
      last().unsigned_integer = magnitude;
      return true;
    }
    if (fits && magnitude <= uint64_t{1} << 63) {
      if (!push(Kind::Integer)) return false;
      last().integer = static_cast<int64_t>(0 - magnitude);
      return true;
    }
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(start, p_, value);
  if (ec != std::errc() || ptr != p_ || !push(Kind::Float)) return false;  // out of range: nlohmann says
  last().number = value;
  return true;
}

// A string: its bytes where it has no escapes, else decoded into decoded_. Control characters
// and malformed UTF-8 end the scan, as they end nlohmann's.
bool JsonScanner::string() {
  ++p_;
  const char* start = p_;
  std::string decoded;
  bool escaped = false;
  while (true) {
    if (p_ == end_) return false;
    const auto c = static_cast<unsigned char>(*p_);
    if (c == '"') break;
    if (c < 0x20) return false;
    if (c == '\\') {
      if (!escaped) decoded.assign(start, p_);
      escaped = true;
      if (!escape(decoded)) return false;
      continue;
    }
    const char* byte = p_;
    if (c >= 0x80) {
      if (!utf8_sequence()) return false;
    } else {
      ++p_;
    }
    if (escaped) decoded.append(byte, p_);
  }
  const size_t length = escaped ? decoded.size() : static_cast<size_t>(p_ - start);
  ++p_;
  if (length >= UINT32_MAX || !push(Kind::String, static_cast<uint32_t>(length))) return false;
  if (!escaped) {
    last().offset = static_cast<uint64_t>(start - tape_.text_.data());
    return true;
  }
  last().offset = (uint64_t{1} << 63) | tape_.decoded_.size();
  tape_.decoded_ += decoded;
  return true;
}

// One escape after the backslash at p_, appended to out as UTF-8; a \u surrogate must pair.
bool JsonScanner::escape(std::string& out) {
  if (end_ - p_ < 2) return false;
  const char e = p_[1];
  p_ += 2;
  static constexpr std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
  if (const size_t i = kFrom.find(e); i != std::string_view::npos) {
    out += kTo[i];
    return true;
  }
  if (e != 'u') return false;
  const auto hex4 = [&](uint32_t& v) {
    if (end_ - p_ < 4) return false;
    const auto [ptr, ec] = std::from_chars(p_, p_ + 4, v, 16);
    if (ec != std::errc() || ptr != p_ + 4 || *p_ == '-' || *p_ == '+') return false;
    p_ += 4;
    return true;
  };
  uint32_t code = 0;
  if (!hex4(code) || (code >= 0xDC00 && code <= 0xDFFF)) return false;
  if (code >= 0xD800 && code <= 0xDBFF) {
    uint32_t low = 0;
    if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
    p_ += 2;
    if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
  }
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
  return true;
}

// One well-formed UTF-8 sequence of two to four bytes at p_ (RFC 3629, as nlohmann checks).
bool JsonScanner::utf8_sequence() {
  const auto byte = [&](ptrdiff_t i) { return static_cast<unsigned char>(p_[i]); };
  const unsigned char lead = byte(0);
  int length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead == 0xE0) length = 3, low = 0xA0;
  else if (lead == 0xED) length = 3, high = 0x9F;
  else if (lead >= 0xE1 && lead <= 0xEF) length = 3;
  else if (lead == 0xF0) length = 4, low = 0x90;
  else if (lead == 0xF4) length = 4, high = 0x8F;
  else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
  else return false;
  if (end_ - p_ < length || byte(1) < low || byte(1) > high) return false;
  for (int i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return false;
  p_ += length;
  return true;
}

std::optional<JsonTape> JsonTape::parse(std::string& text) {
  std::optional<JsonTape> tape(JsonTape{});
  tape->text_ = std::move(text);
  if (JsonScanner(*tape).run()) return tape;
  text = std::move(tape->text_);
  return std::nullopt;
}

uint32_t JsonTape::next(uint32_t index) const {
  const Node& n = nodes_[index];
  return n.kind == Kind::Array || n.kind == Kind::Object ? n.end : index + 1;
}

std::string_view JsonTape::text_of(const Node& string) const {
  const uint64_t top = uint64_t{1} << 63;
  if (string.offset & top) return std::string_view(decoded_).substr(string.offset & ~top, string.length);
  return std::string_view(text_).substr(string.offset, string.length);
}

// ---- JsonView ----

namespace {

using Kind = JsonTape::Kind;

// nlohmann's own exception for a value of the wrong type, for the readers' safety nets.
[[noreturn]] void wrong_type(const char* expected, const JsonView& value) {
  throw nlohmann::json::type_error::create(
      302, std::string("type must be ") + expected + ", but is " + value.scalar().type_name(), nullptr);
}

}  // namespace

bool JsonView::is_null() const { return tape_->node(index_).kind == Kind::Null; }
bool JsonView::is_boolean() const {
  const Kind k = tape_->node(index_).kind;
  return k == Kind::True || k == Kind::False;
}
bool JsonView::is_number_integer() const {
  const Kind k = tape_->node(index_).kind;
  return k == Kind::Integer || k == Kind::Unsigned;
}
bool JsonView::is_number_unsigned() const { return tape_->node(index_).kind == Kind::Unsigned; }
bool JsonView::is_number_float() const { return tape_->node(index_).kind == Kind::Float; }
bool JsonView::is_string() const { return tape_->node(index_).kind == Kind::String; }
bool JsonView::is_array() const { return tape_->node(index_).kind == Kind::Array; }
bool JsonView::is_object() const { return tape_->node(index_).kind == Kind::Object; }

size_t JsonView::size() const {
  const JsonTape::Node& n = tape_->node(index_);
  if (n.kind == Kind::Null) return 0;
  return is_structured() ? n.length : 1;
}

JsonView::iterator JsonView::begin() const {
  if (!is_structured() || empty()) return end();
  const bool object = is_object();
  return {tape_, index_ + (object ? 2u : 1u), tape_->next(index_), object};
}

JsonView::iterator JsonView::end() const {
  const uint32_t stop = tape_->next(index_);
  return {tape_, stop, stop, is_object()};
}

JsonView::iterator& JsonView::iterator::operator++() {
  index_ = tape_->next(index_);
  if (object_ && index_ != stop_) ++index_;  // past the next member's key
  return *this;
}

// The value of the last member named key, or the object's end when there is none.
static uint32_t find_member(const JsonTape& tape, uint32_t object, std::string_view key) {
  const uint32_t stop = tape.next(object);
  uint32_t found = stop;
  for (uint32_t k = object + 1; k < stop; k = tape.next(k + 1))
    if (tape.text_of(tape.node(k)) == key) found = k + 1;
  return found;
}

bool JsonView::contains(std::string_view key) const {
  return is_object() && find_member(*tape_, index_, key) != tape_->next(index_);
}

JsonView JsonView::operator[](std::string_view key) const {
  if (!is_object()) wrong_type("object", *this);
  const uint32_t at = find_member(*tape_, index_, key);
  if (at == tape_->next(index_))
    throw nlohmann::json::out_of_range::create(403, "key '" + std::string(key) + "' not found", nullptr);
  return {tape_, at};
}

JsonView JsonView::operator[](size_t index) const {
  if (!is_array()) wrong_type("array", *this);
  if (index >= size())
    throw nlohmann::json::out_of_range::create(401, "array index " + std::to_string(index) + " is out of range", nullptr);
  auto it = begin();
  for (size_t i = 0; i < index; ++i) ++it;
  return *it;
}

std::string_view JsonView::string_view() const {
  if (!is_string()) wrong_type("string", *this);
  return tape_->text_of(tape_->node(index_));
}

nlohmann::json JsonView::scalar() const {
  const JsonTape::Node& n = tape_->node(index_);
  switch (n.kind) {
    case Kind::False: return false;
    case Kind::True: return true;
    case Kind::Integer: return n.integer;
    case Kind::Unsigned: return n.unsigned_integer;
    case Kind::Float: return n.number;
    case Kind::String: return std::string(tape_->text_of(n));
    case Kind::Array: return nlohmann::json::array();
    case Kind::Object: return nlohmann::json::object();
    default: return nullptr;
  }
}

// Numbers and booleans as nlohmann's get converts them (a type it would refuse throws its error).
template <typename T>
T JsonView::get() const {
  const JsonTape::Node& n = tape_->node(index_);
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string(string_view());
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!is_boolean()) wrong_type("boolean", *this);
    return n.kind == Kind::True;
  } else {
    if (n.kind == Kind::Integer) return static_cast<T>(n.integer);
    if (n.kind == Kind::Unsigned) return static_cast<T>(n.unsigned_integer);
    if (n.kind == Kind::Float) return static_cast<T>(n.number);
    if (n.kind == Kind::True || n.kind == Kind::False) return static_cast<T>(n.kind == Kind::True);
    wrong_type("number", *this);
  }
}

template bool JsonView::get<bool>() const;
template int64_t JsonView::get<int64_t>() const;
template uint64_t JsonView::get<uint64_t>() const;
template double JsonView::get<double>() const;
template std::string JsonView::get<std::string>() const;

}  // namespace mrcnn
