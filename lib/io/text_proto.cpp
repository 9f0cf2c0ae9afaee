#include "io/text_proto.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

namespace mrcnn {
namespace {

// A byte as a message can show it: the character when printable, else its code.
std::string show_byte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (std::isprint(byte)) return std::string("'") + c + "'";
  char code[16];
  std::snprintf(code, sizeof code, "byte 0x%02X", byte);
  return code;
}

// A name as an error message shows it: hostile files have megabyte-long names.
std::string shorten(const std::string& name) {
  return name.size() <= 80 ? name : name.substr(0, 60) + "...(" + std::to_string(name.size()) + " characters)";
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code >> 6)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

// Reads exactly `digits` hex digits at text[pos] (\u, \U) or up to `digits` (\x).
uint32_t read_hex(const std::string& text, size_t& pos, int digits, bool exact, char escape) {
  uint32_t value = 0;
  int read = 0;
  for (; read < digits && pos < text.size() && hex_digit(text[pos]) >= 0; ++read, ++pos)
    value = value * 16 + static_cast<uint32_t>(hex_digit(text[pos]));
  if (read == 0 || (exact && read < digits))
    throw Error(std::string("\\") + escape + " needs " + (exact ? "" : "1 to ") + std::to_string(digits) +
                " hex digits");
  return value;
}

// One escape sequence after its backslash (text[pos] is the escape letter), appended to out.
void decode_escape(const std::string& text, size_t& pos, std::string& out) {
  const char c = text[pos++];
  switch (c) {
    case 'a': out.push_back('\a'); return;
    case 'b': out.push_back('\b'); return;
    case 'f': out.push_back('\f'); return;
    case 'n': out.push_back('\n'); return;
    case 'r': out.push_back('\r'); return;
    case 't': out.push_back('\t'); return;
    case 'v': out.push_back('\v'); return;
    case '\\': case '\'': case '"': case '?': out.push_back(c); return;
    case 'x': case 'X': out.push_back(static_cast<char>(read_hex(text, pos, 2, false, c))); return;
    case 'u': case 'U': {
      const uint32_t code = read_hex(text, pos, c == 'u' ? 4 : 8, true, c);
      if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        throw Error("\\" + std::string(1, c) + " escape of " + std::to_string(code) + " is not a Unicode character");
      append_utf8(out, code);
      return;
    }
    default:
      if (c >= '0' && c <= '7') {
        int value = c - '0';
        for (int digits = 1; digits < 3 && pos < text.size() && text[pos] >= '0' && text[pos] <= '7'; ++digits)
          value = value * 8 + (text[pos++] - '0');
        out.push_back(static_cast<char>(value & 0xFF));
        return;
      }
      --pos;
      const bool printable = std::isprint(static_cast<unsigned char>(c));
      throw Error("unknown escape \\" + (printable ? std::string(1, c) : show_byte(c)) + " in a string");
  }
}

// Fields of one message in the order read, found through a hash: nlohmann's ordered_json finds
// a key by linear search, which makes a message of many fields quadratic to build.
class FieldList {
 public:
  Json& values_of(const std::string& name) {
    const auto [it, added] = index_.try_emplace(name, entries_.size());
    if (added) entries_.emplace_back(name, Json::array());
    return entries_[it->second].second;
  }
  Json take() {
    Json fields = Json::object();
    // ordered_json's object is a std::vector of pairs; the names are already unique, so append.
    Json::object_t::Container& entries = fields.get_ref<Json::object_t&>();
    entries.reserve(entries_.size());
    for (auto& [name, values] : entries_) entries.emplace_back(std::move(name), std::move(values));
    return fields;
  }

 private:
  std::vector<std::pair<std::string, Json>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  // The fields up to `close` (or the end of the text when close is '\0'); depth counts the
  // messages around this one.
  Json message(char close, int depth) {
    FieldList fields;
    while (true) {
      skip_space();
      if (at_end()) {
        if (close) throw error(std::string("missing '") + close + "'");
        return fields.take();
      }
      if (close && peek() == close) {
        ++pos_;
        return fields.take();
      }
      const std::string name = field_name();
      skip_space();
      bool colon = false;
      if (peek() == ':') {
        ++pos_, colon = true;
        skip_space();
      }
      Json& values = fields.values_of(name);
      if (opens_message()) {
        values.push_back(nested(name, depth));
      } else if (peek() == '[') {
        list(name, depth, values);
      } else {
        if (!colon) throw error("expected ':' or '{' after " + shorten(name));
        values.push_back(scalar(name));
      }
      skip_space();
      if (peek() == ';' || peek() == ',') ++pos_;
    }
  }

  Error error(const std::string& what) const { return error_at(pos_, what); }

  Error error_at(size_t at, const std::string& what) const {
    int line = 1, column = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') line++, column = 1;
      else ++column;
    }
    return Error(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool opens_message() const { return peek() == '{' || peek() == '<'; }

  Json nested(const std::string& name, int depth) {
    if (depth + 1 > kMaxTextProtoDepth)
      throw error(shorten(name) + ": messages nested deeper than " + std::to_string(kMaxTextProtoDepth) + " levels");
    const char open = text_[pos_++];
    return message(open == '{' ? '}' : '>', depth + 1);
  }

  // [a, b, ...] or [{...}, {...}] after `name`, appended to values.
  void list(const std::string& name, int depth, Json& values) {
    ++pos_;
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return;
    }
    while (true) {
      skip_space();
      values.push_back(opens_message() ? nested(name, depth) : scalar(name));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return;
      }
      throw error("expected ',' or ']' in the list of " + shorten(name));
    }
  }

  void skip_space() {
    while (!at_end()) {
      if (text_[pos_] == '#') {
        while (!at_end() && text_[pos_] != '\n') ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  static bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  std::string field_name() {
    if (peek() == '[') {  // an extension or Any type URL: [a.b.c]
      const size_t end = text_.find(']', pos_);
      if (end == std::string::npos) throw error("unterminated '[' in a field name");
      std::string name = text_.substr(pos_, end - pos_ + 1);
      pos_ = end + 1;
      return name;
    }
    if (!std::isalpha(static_cast<unsigned char>(peek())) && peek() != '_')
      throw error("expected a field name, found " + (at_end() ? std::string("end of file") : show_byte(peek())));
    const size_t start = pos_;
    while (!at_end() && ident_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  std::string string_literal(const std::string& name) {
    try {
      return decode_text_proto_string(text_, pos_);
    } catch (const Error& e) {
      throw error(shorten(name) + ": " + e.what());
    }
  }

  Json scalar(const std::string& name) {
    skip_space();
    const char c = peek();
    if (c == '"' || c == '\'') {
      std::string value = string_literal(name);
      for (skip_space(); peek() == '"' || peek() == '\''; skip_space()) value += string_literal(name);  // "a" "b"
      return value;
    }
    const size_t start = pos_;
    if (c == '-' || c == '+') ++pos_;
    while (!at_end() && (ident_char(text_[pos_]) || text_[pos_] == '.' ||
                         ((text_[pos_] == '-' || text_[pos_] == '+') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E'))))
      ++pos_;
    std::string token = text_.substr(start, pos_ - start);
    if (token.empty() || token == "-" || token == "+")
      throw error(shorten(name) + ": expected a value, found " +
                  (at_end() ? std::string("end of file") : show_byte(c)));
    if (token == "true" || token == "True" || token == "t") return true;
    if (token == "false" || token == "False" || token == "f") return false;
    if (Json number; parse_number(token, start, name, number)) return number;
    if (std::isalpha(static_cast<unsigned char>(token[0])) || token[0] == '_') return token;  // an enum value
    if (token == "-inf" || token == "inf" || token == "nan") return token;
    throw error_at(start, shorten(name) + ": '" + shorten(token) + "' is not a number, string or enum value");
  }

  // Integers as int64 (uint64 above that), other numbers as doubles; false if token is none.
  bool parse_number(std::string token, size_t start, const std::string& name, Json& number) const {
    if (token.size() > 1 && (token.back() == 'f' || token.back() == 'F') && token.find_first_of("xX") == std::string::npos)
      token.pop_back();  // 1.5f, not 0xF
    char* end = nullptr;
    const bool hex = token.find_first_of("xX") != std::string::npos;
    const bool integer = hex || token.find_first_of(".eE") == std::string::npos;
    if (integer) {
      errno = 0;
      const long long v = std::strtoll(token.c_str(), &end, 0);
      if (end && *end == '\0' && errno == 0) {
        number = v;
        return true;
      }
      if (end && *end == '\0' && token[0] != '-') {
        errno = 0;
        const unsigned long long u = std::strtoull(token.c_str(), &end, 0);
        if (errno == 0) {
          number = u;
          return true;
        }
      }
    }
    const char first = token.size() > 1 && (token[0] == '-' || token[0] == '+') ? token[1] : token[0];
    if (!std::isdigit(static_cast<unsigned char>(first)) && first != '.') return false;
    errno = 0;
    const double d = std::strtod(token.c_str(), &end);
    if (!end || *end != '\0') return false;
    if (std::isinf(d))
      throw error_at(start, shorten(name) + ": " + shorten(token) + " is out of the range of a number (a double)");
    number = d;
    return true;
  }

  const std::string& text_;
  std::string source_;
  size_t pos_ = 0;
};

}  // namespace

std::string decode_text_proto_string(const std::string& text, size_t& pos) {
  const char quote = text[pos++];
  std::string out;
  while (true) {
    if (pos >= text.size() || text[pos] == '\n') throw Error("unterminated string");
    const char c = text[pos++];
    if (c == quote) break;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (pos >= text.size()) throw Error("unterminated string");
    decode_escape(text, pos, out);
  }
  if (const size_t bad = invalid_utf8_offset(out); bad != std::string::npos)
    throw Error("the string is not UTF-8 text (" + show_byte(out[bad]) + " at offset " + std::to_string(bad) +
                " of its value)");
  return out;
}

size_t invalid_utf8_offset(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b = bytes[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    // Lead byte → length and the smallest code point (overlong forms are invalid).
    size_t length;
    uint32_t code, minimum;
    if ((b & 0xE0) == 0xC0) length = 2, code = b & 0x1F, minimum = 0x80;
    else if ((b & 0xF0) == 0xE0) length = 3, code = b & 0x0F, minimum = 0x800;
    else if ((b & 0xF8) == 0xF0) length = 4, code = b & 0x07, minimum = 0x10000;
    else return i;
    if (i + length > n) return i;
    for (size_t k = 1; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return i;
      code = (code << 6) | (bytes[i + k] & 0x3F);
    }
    if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += length;
  }
  return std::string::npos;
}

Json parse_text_proto(const std::string& text, const std::string& source) {
  Parser parser(text, source);
  // pipeline.config files are UTF-8 text (TF reads them as such); everything after relies on it.
  if (const size_t bad = invalid_utf8_offset(text); bad != std::string::npos)
    throw parser.error_at(bad, "not UTF-8 text (" + show_byte(text[bad]) + ")");
  return parser.message('\0', 0);
}

Json read_text_proto_file(const std::string& path) { return parse_text_proto(read_text_file(path), path); }

}  // namespace mrcnn
