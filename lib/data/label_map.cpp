#include "data/label_map.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/text_proto.h"

namespace mrcnn::data {
namespace {

std::string byte_code(char c) {
  char code[16];
  std::snprintf(code, sizeof code, "byte 0x%02X", static_cast<unsigned char>(c));
  return code;
}

// A tokenizer for the protobuf text format subset label maps use: identifiers, numbers,
// quoted strings (escapes decoded by io/text_proto), braces, brackets and colons, with # comments.
// Label maps are read token by token, not as a tree, so that errors can name their line.
class PbtxtLexer {
 public:
  PbtxtLexer(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  // Returns false at the end. kind: 'i' identifier/number, 's' string, or the punctuation char.
  bool next(char& kind, std::string& value) {
    skip_space();
    if (pos_ >= text_.size()) return false;
    token_line_ = line_;
    const char c = text_[pos_];
    if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ';' || c == ',') {
      kind = c;
      value = std::string(1, c);
      ++pos_;
      return true;
    }
    if (c == '"' || c == '\'') {
      kind = 's';
      try {
        value = decode_text_proto_string(text_, pos_);
      } catch (const Error& e) {
        throw error(e.what());
      }
      return true;
    }
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '+' || c == '.') {
      kind = 'i';
      value.clear();
      while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' ||
                                     text_[pos_] == '-' || text_[pos_] == '+' || text_[pos_] == '.'))
        value.push_back(text_[pos_++]);
      return true;
    }
    throw error("unexpected " + (std::isprint(static_cast<unsigned char>(c)) ? "character '" + std::string(1, c) + "'"
                                                                             : byte_code(c)));
  }
  Error error(const std::string& what) const {
    return Error(source_ + ":" + std::to_string(token_line_) + ": " + what);
  }
  // Skips the rest of a {...} or [...] whose opening token was just read.
  void skip_block(char open) {
    const char close = open == '{' ? '}' : ']';
    char kind;
    std::string value;
    for (int depth = 1; depth > 0;) {
      if (!next(kind, value)) throw error(std::string("missing '") + close + "'");
      depth += kind == open ? 1 : kind == close ? -1 : 0;
    }
  }

 private:
  void skip_space() {
    while (pos_ < text_.size()) {
      if (text_[pos_] == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(text_[pos_]))) {
        if (text_[pos_] == '\n') ++line_;
        ++pos_;
      } else {
        break;
      }
    }
  }
  const std::string& text_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1, token_line_ = 1;
};

// A decimal integer token (an id), or nothing when it is none or beyond 64 bits.
std::optional<int64_t> integer_token(const std::string& token) {
  if (token.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(token.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return std::nullopt;
  return value;
}

bool all_digits(const std::string& token) {
  const size_t start = !token.empty() && (token[0] == '-' || token[0] == '+') ? 1 : 0;
  return token.size() > start && token.find_first_not_of("0123456789", start) == std::string::npos;
}

// Control characters escaped: a name holding a newline must not split the error line.
std::string shorten(const std::string& text) { return text_preview(text, 40); }

// Adds one item, or says what is wrong with it. The TF OD API's rules (label_map_util): ids are
// int32 and >= 0, id 0 only for the background (not a class here, so skipped); mrcnn's: every
// class has a name, each id once.
std::string add_item(LabelMap& map, int64_t id, const std::string& name, const std::string& display_name) {
  const std::string which = "id " + std::to_string(id);
  if (id < 0 || id > kMaxLabelId)
    return which + ": out of range (label map ids are integers from 1 to " + std::to_string(kMaxLabelId) +
           ", 0 for the background)";
  if (id == 0) {
    if (name == "background" || display_name == "background") return "";
    return "id 0 is reserved for the background (name: 'background'); classes are numbered from 1";
  }
  if (name.empty() && display_name.empty()) return which + ": no name (expected name: '...' or display_name: '...')";
  if (map.names().count(id)) return which + " appears twice";
  map.set(id, display_name.empty() ? name : display_name);
  return "";
}

}  // namespace

LabelMap LabelMap::parse_pbtxt(const std::string& text, const std::string& source) {
  if (const size_t bad = invalid_utf8_offset(text); bad != std::string::npos)
    throw Error(source + ":" + std::to_string(1 + std::count(text.begin(), text.begin() + long(bad), '\n')) +
                ": not UTF-8 text (" + byte_code(text[bad]) + ")");
  LabelMap map;
  PbtxtLexer lex(text, source);
  char kind;
  std::string value;
  while (lex.next(kind, value)) {
    if (kind != 'i' || value != "item") throw lex.error("expected 'item {', found '" + shorten(value) + "'");
    if (lex.next(kind, value) && kind == ':') lex.next(kind, value);
    if (kind != '{') throw lex.error("expected '{' after item");
    std::optional<int64_t> id;
    std::string name, display_name;
    while (true) {
      if (!lex.next(kind, value)) throw lex.error("unterminated item (missing '}')");
      if (kind == '}') break;
      if (kind == ';' || kind == ',') continue;
      if (kind != 'i') throw lex.error("expected a field name, found '" + shorten(value) + "'");
      const std::string field = value;
      if (!lex.next(kind, value)) throw lex.error("missing value of " + shorten(field));
      if (kind == ':' && !lex.next(kind, value)) throw lex.error("missing value of " + shorten(field));
      const bool ours = field == "id" || field == "name" || field == "display_name";
      if (kind == '{' || kind == '[') {  // a nested message or list we don't use (keypoints, ancestor_ids)
        if (ours) throw lex.error(field + ": expected a single value, found '" + value + "'");
        lex.skip_block(kind);
        continue;
      }
      if (kind != 'i' && kind != 's') throw lex.error("missing value of " + shorten(field));
      if (field == "id") {
        id = kind == 'i' ? integer_token(value) : std::nullopt;
        if (!id && kind == 'i' && all_digits(value))
          throw lex.error("id " + shorten(value) + ": out of range (label map ids are integers from 1 to " +
                          std::to_string(kMaxLabelId) + ")");
        if (!id) throw lex.error("id: expected an integer, found '" + shorten(value) + "'");
      } else if (field == "name") {
        name = value;
      } else if (field == "display_name") {
        display_name = value;
      }
    }
    if (!id) throw lex.error("item without an id");
    if (const std::string problem = add_item(map, *id, name, display_name); !problem.empty()) throw lex.error(problem);
  }
  if (map.empty()) throw Error(source + ": no items");
  return map;
}

// Read as plain nlohmann::json: its objects are hashed, where ordered_json's linear key search is
// quadratic in the number of classes.
LabelMap LabelMap::from_json(const nlohmann::json& doc, const std::string& source) {
  if (!doc.is_object() && !doc.is_array())
    throw Error(source + ": expected a JSON object {\"1\": \"name\", ...} or a list [{\"id\": 1, \"name\": "
                "\"...\"}, ...], found " + json_preview(doc));
  LabelMap map;
  if (doc.is_object()) {
    for (const auto& [key, value] : doc.items()) {
      const std::optional<int64_t> id = all_digits(key) ? integer_token(key) : std::nullopt;
      if (!id) throw Error(source + ": key '" + shorten(key) + "': expected a class id (an integer from 1 to " +
                           std::to_string(kMaxLabelId) + ")");
      if (!value.is_string()) throw Error(source + ": class " + key + ": expected a name (string)");
      if (const std::string problem = add_item(map, *id, value.get<std::string>(), ""); !problem.empty())
        throw Error(source + ": " + problem);
    }
  } else {
    for (size_t i = 0; i < doc.size(); ++i) {
      const nlohmann::json& item = doc[i];
      const auto text = [&](const char* key) {
        return item.contains(key) && item[key].is_string() ? item[key].get<std::string>() : std::string();
      };
      const bool display_ok = !item.is_object() || !item.contains("display_name") || item["display_name"].is_string();
      if (!item.is_object() || !item.contains("id") || !item["id"].is_number_integer() || !item.contains("name") ||
          !item["name"].is_string() || !display_ok)
        throw Error(source + ": item " + std::to_string(i) + ": expected {\"id\": integer, \"name\": string}" +
                    " (and optionally \"display_name\": string)");
      const int64_t id = item["id"].is_number_unsigned() && item["id"].get<uint64_t>() > uint64_t(kMaxLabelId)
                             ? kMaxLabelId + 1
                             : item["id"].get<int64_t>();
      if (const std::string problem = add_item(map, id, text("name"), text("display_name")); !problem.empty())
        throw Error(source + ": item " + std::to_string(i) + ": " + problem);
    }
  }
  return map;
}

LabelMap LabelMap::read(const std::string& path) {
  const std::string text = read_text_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (text[first] != '{' && text[first] != '[')) return parse_pbtxt(text, path);
  LabelMap map = from_json(parse_json_data(text, path), path);  // the file is read once
  if (map.empty()) throw Error(path + ": no classes");
  return map;
}

std::string LabelMap::name(int64_t id) const {
  const auto it = names_.find(id);
  return it != names_.end() ? it->second : "class " + std::to_string(id);
}

}  // namespace mrcnn::data
