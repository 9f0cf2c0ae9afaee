#include "io/json_file.h"

#include <algorithm>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

namespace mrcnn {

namespace {

// "<line>:<column>" (both 1-based) of the byte at offset; text starts at line first_line.
std::string line_and_column(const std::string& text, size_t offset, size_t first_line) {
  offset = std::min(offset, text.size());
  const size_t line = first_line + std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n');
  const size_t line_start = offset == 0 ? std::string::npos : text.rfind('\n', offset - 1);
  const size_t column = line_start == std::string::npos ? offset + 1 : offset - line_start;
  return std::to_string(line) + ":" + std::to_string(column);
}

// Offset of the bracket that opens nesting level depth + 1 in text whose first part is valid
// JSON (the parser got that far): one pass, no recursion.
size_t offset_of_level(const std::string& text, size_t depth) {
  size_t level = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++level > depth) return i;
    } else if (c == ']' || c == '}') {
      --level;
    }
  }
  return text.size();
}

// Builds the document from nlohmann's SAX events without recursion, refusing nesting deeper than
// kMaxJsonDepth and keeping the position of the first error. Objects of the order-keeping Json
// index their keys, since its own lookups are linear (a 300k-key object would take minutes).
template <class J>
class DocumentBuilder : public nlohmann::json_sax<J> {
 public:
  using string_t = typename J::string_t;

  explicit DocumentBuilder(J& root) : root_(root) {}

  bool null() override { return add(J(nullptr)); }
  bool boolean(bool v) override { return add(J(v)); }
  bool number_integer(typename J::number_integer_t v) override { return add(J(v)); }
  bool number_unsigned(typename J::number_unsigned_t v) override { return add(J(v)); }
  bool number_float(typename J::number_float_t v, const string_t&) override { return add(J(v)); }
  bool string(string_t& v) override { return add(J(std::move(v))); }
  bool binary(typename J::binary_t& v) override { return add(J::binary(std::move(v))); }
  bool start_object(std::size_t) override { return open(J::object()); }
  bool start_array(std::size_t) override { return open(J::array()); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::json::exception& e) override {
    error_position = position;
    error_token = token;
    error_id = e.id;
    error_text = e.what();
    return false;
  }

  bool too_deep = false;
  size_t error_position = 0;
  std::string error_token, error_text;
  int error_id = 0;

 private:
  static constexpr bool kOrdered = std::is_same_v<J, nlohmann::ordered_json>;
  struct Open {
    J* node;
    std::unordered_map<string_t, size_t> index;  // key -> member position (ordered objects only)
  };

  // Where the next value goes: the root, the end of the open array, or the open object's member.
  J* insert(J value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Open& top = open_.back();
    if (top.node->is_array()) {
      top.node->push_back(std::move(value));
      return &top.node->back();
    }
    if constexpr (kOrdered) {
      // ordered_map is a vector of members; a repeated key replaces the value in place, as nlohmann does.
      auto& object = top.node->template get_ref<typename J::object_t&>();
      auto& members = static_cast<typename J::object_t::Container&>(object);
      const auto [slot, fresh] = top.index.try_emplace(key_, members.size());
      if (!fresh) return &(members[slot->second].second = std::move(value));
      members.emplace_back(std::move(key_), std::move(value));
      return &members.back().second;
    } else {
      return &((*top.node)[std::move(key_)] = std::move(value));
    }
  }
  bool add(J value) {
    insert(std::move(value));
    return true;
  }
  bool open(J container) {
    if (open_.size() >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    J* node = insert(std::move(container));
    open_.push_back({node, {}});
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  J& root_;
  std::vector<Open> open_;
  string_t key_;
};

template <class J>
J parse_document(const std::string& text, const std::string& source, size_t first_line = 1) {
  J doc;
  DocumentBuilder<J> builder(doc);
  if (J::sax_parse(text, &builder)) return doc;
  if (builder.too_deep)
    throw Error(source + ":" + line_and_column(text, offset_of_level(text, kMaxJsonDepth), first_line) +
                ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (builder.error_id == 406) {
    // Number overflow: the position is just past the number.
    const size_t start = builder.error_position - std::min(builder.error_position, builder.error_token.size());
    throw Error(source + ":" + line_and_column(text, start, first_line) + ": number out of range: " +
                text_preview(builder.error_token) + " (beyond a 64-bit float)");
  }
  // The position is 1-based and one past the offending character; nlohmann's text reads
  // "[json.exception.parse_error.101] parse error at line L, column C: <reason>".
  std::string reason = builder.error_text;
  const auto colon = reason.find(": ");
  if (colon != std::string::npos) reason = reason.substr(colon + 2);
  const size_t offset = builder.error_position > 0 ? builder.error_position - 1 : 0;
  throw Error(source + ":" + line_and_column(text, offset, first_line) + ": malformed JSON: " +
              text_preview(reason, 200));
}

// Appends value as compact JSON to out, stopping once out is longer than budget; containers
// deeper than kPreviewDepth show as [...] or {...}, so the recursion stays shallow.
constexpr int kPreviewDepth = 8;

template <class J>
void append_string(const typename J::string_t& s, size_t budget, std::string& out) {
  const size_t room = budget >= out.size() ? budget - out.size() + 1 : 1;
  out += J(s.substr(0, room)).dump(-1, ' ', false, J::error_handler_t::replace);
}

template <class J>
void append_preview(const J& value, size_t budget, int depth, std::string& out) {
  if (value.is_string()) return append_string<J>(value.template get_ref<const typename J::string_t&>(), budget, out);
  if (value.is_binary()) {
    out += "<binary>";
    return;
  }
  if (!value.is_structured()) {
    out += value.dump();
    return;
  }
  const bool array = value.is_array();
  if (depth >= kPreviewDepth && !value.empty()) {
    out += array ? "[...]" : "{...}";
    return;
  }
  out += array ? '[' : '{';
  for (auto it = value.begin(); it != value.end() && out.size() <= budget; ++it) {
    if (it != value.begin()) out += ',';
    if (!array) {
      append_string<J>(it.key(), budget, out);
      out += ':';
    }
    append_preview(*it, budget, depth + 1, out);
  }
  out += array ? ']' : '}';
}

// Appends c, control characters escaped, so that a message stays on one line.
void append_visible(char c, std::string& out) {
  constexpr const char* kHex = "0123456789abcdef";
  const auto byte = static_cast<unsigned char>(c);
  if (c == '\n') out += "\\n";
  else if (c == '\t') out += "\\t";
  else if (c == '\r') out += "\\r";
  else if (byte < 0x20 || byte == 0x7F) out += std::string{'\\', 'x', kHex[byte >> 4], kHex[byte & 15]};
  else out += c;
}

template <class J>
std::string preview(const J& value, size_t max_chars) {
  std::string out;
  append_preview(value, max_chars, 0, out);
  return text_preview(out, max_chars);
}

}  // namespace

Json parse_json(const std::string& text, const std::string& source) { return parse_document<Json>(text, source); }

nlohmann::json parse_json_data(const std::string& text, const std::string& source, size_t first_line) {
  return parse_document<nlohmann::json>(text, source, first_line);
}

nlohmann::json read_json_data_file(const std::string& path) { return parse_json_data(read_text_file(path), path); }

Json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

std::string json_preview(const Json& value, size_t max_chars) { return preview(value, max_chars); }
std::string json_preview(const nlohmann::json& value, size_t max_chars) { return preview(value, max_chars); }

std::string text_preview(std::string_view text, size_t max_chars) {
  const size_t keep = max_chars > 3 ? max_chars - 3 : 0;
  std::string out;
  size_t cut = 0;  // where out may be cut: the last character start within keep
  for (const char c : text) {
    if (out.size() > max_chars) break;
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80 && out.size() <= keep) cut = out.size();
    append_visible(c, out);
  }
  if (out.size() <= max_chars) return out;
  out.resize(cut);
  return out + "...";
}

void write_json_file(const std::string& path, const Json& doc) { write_file_atomic(path, doc.dump(2) + "\n"); }

}  // namespace mrcnn
