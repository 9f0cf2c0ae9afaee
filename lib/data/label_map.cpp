#include "data/label_map.h"

#include <cctype>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

namespace mrcnn::data {
namespace {

// A tokenizer for the protobuf text format subset label maps use: identifiers, numbers,
// quoted strings, braces and colons, with # comments.
class PbtxtLexer {
 public:
  PbtxtLexer(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  // Returns false at the end. kind: 'i' identifier/number, 's' string, or the punctuation char.
  bool next(char& kind, std::string& value) {
    skip_space();
    if (pos_ >= text_.size()) return false;
    token_line_ = line_;
    const char c = text_[pos_];
    if (c == '{' || c == '}' || c == ':' || c == ';' || c == ',') {
      kind = c;
      value = std::string(1, c);
      ++pos_;
      return true;
    }
    if (c == '"' || c == '\'') {
      kind = 's';
      value.clear();
      for (++pos_; pos_ < text_.size() && text_[pos_] != c; ++pos_) {
        if (text_[pos_] == '\n') throw error("unterminated string");
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        value.push_back(text_[pos_]);
      }
      if (pos_ >= text_.size()) throw error("unterminated string");
      ++pos_;
      return true;
    }
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') {
      kind = 'i';
      value.clear();
      while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' ||
                                     text_[pos_] == '-' || text_[pos_] == '.'))
        value.push_back(text_[pos_++]);
      return true;
    }
    throw error(std::string("unexpected character '") + c + "'");
  }
  Error error(const std::string& what) const {
    return Error(source_ + ":" + std::to_string(token_line_) + ": " + what);
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

}  // namespace

LabelMap LabelMap::parse_pbtxt(const std::string& text, const std::string& source) {
  LabelMap map;
  PbtxtLexer lex(text, source);
  char kind;
  std::string value;
  while (lex.next(kind, value)) {
    if (kind != 'i' || value != "item") throw lex.error("expected 'item {', found '" + value + "'");
    if (!lex.next(kind, value) || kind != '{') throw lex.error("expected '{' after item");
    int64_t id = -1;
    std::string name, display_name;
    while (true) {
      if (!lex.next(kind, value)) throw lex.error("unterminated item (missing '}')");
      if (kind == '}') break;
      if (kind == ';' || kind == ',') continue;
      if (kind != 'i') throw lex.error("expected a field name, found '" + value + "'");
      const std::string field = value;
      if (!lex.next(kind, value)) throw lex.error("missing value of " + field);
      if (kind == ':' && !lex.next(kind, value)) throw lex.error("missing value of " + field);
      if (kind == '{') {  // a nested message we don't use (e.g. keypoints): skip it
        int depth = 1;
        while (depth > 0 && lex.next(kind, value)) depth += kind == '{' ? 1 : kind == '}' ? -1 : 0;
        continue;
      }
      if (field == "id") {
        try {
          size_t used = 0;
          id = std::stoll(value, &used);
          if (used != value.size()) throw std::invalid_argument(value);
        } catch (const std::exception&) {
          throw lex.error("id: expected an integer, found '" + value + "'");
        }
      } else if (field == "name") {
        name = value;
      } else if (field == "display_name") {
        display_name = value;
      }
    }
    if (id < 0) throw lex.error("item without an id");
    if (map.names_.count(id)) throw lex.error("id " + std::to_string(id) + " appears twice");
    map.names_[id] = display_name.empty() ? name : display_name;
  }
  if (map.empty()) throw Error(source + ": no items");
  return map;
}

LabelMap LabelMap::read(const std::string& path) {
  const std::string text = read_text_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || (text[first] != '{' && text[first] != '[')) return parse_pbtxt(text, path);
  const Json doc = parse_json(text, path);
  LabelMap map;
  if (doc.is_object()) {
    for (const auto& [key, value] : doc.items()) {
      int64_t id = 0;
      try {
        size_t used = 0;
        id = std::stoll(key, &used);
        if (used != key.size()) throw std::invalid_argument(key);
      } catch (const std::exception&) {
        throw Error(path + ": key '" + key + "': expected a class id (integer)");
      }
      if (!value.is_string()) throw Error(path + ": class " + key + ": expected a name (string)");
      map.names_[id] = value.get<std::string>();
    }
  } else {
    for (size_t i = 0; i < doc.size(); ++i) {
      const Json& item = doc[i];
      if (!item.is_object() || !item.contains("id") || !item["id"].is_number_integer() || !item.contains("name") ||
          !item["name"].is_string())
        throw Error(path + ": item " + std::to_string(i) + ": expected {\"id\": integer, \"name\": string}");
      map.names_[item["id"].get<int64_t>()] = item.value("display_name", item["name"].get<std::string>());
    }
  }
  if (map.empty()) throw Error(path + ": no classes");
  return map;
}

std::string LabelMap::name(int64_t id) const {
  const auto it = names_.find(id);
  return it != names_.end() ? it->second : "class " + std::to_string(id);
}

}  // namespace mrcnn::data
