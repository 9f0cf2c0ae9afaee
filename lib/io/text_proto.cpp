#include "io/text_proto.h"

#include <cctype>
#include <cstdlib>

#include "core/error.h"
#include "io/atomic_file.h"

namespace mrcnn {
namespace {

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  Json message(char close) {
    Json fields = Json::object();
    while (true) {
      skip_space();
      if (at_end()) {
        if (close) throw error(std::string("missing '") + close + "'");
        return fields;
      }
      if (close && peek() == close) {
        ++pos_;
        return fields;
      }
      const std::string name = field_name();
      skip_space();
      bool colon = false;
      if (peek() == ':') {
        ++pos_, colon = true;
        skip_space();
      }
      auto& values = fields[name];
      if (!values.is_array()) values = Json::array();
      if (peek() == '{' || peek() == '<') {
        const char open = text_[pos_++];
        values.push_back(message(open == '{' ? '}' : '>'));
      } else if (peek() == '[') {
        ++pos_;
        skip_space();
        if (peek() == ']') {
          ++pos_;
        } else {
          while (true) {
            skip_space();
            if (peek() == '{' || peek() == '<') {
              const char open = text_[pos_++];
              values.push_back(message(open == '{' ? '}' : '>'));
            } else {
              values.push_back(scalar());
            }
            skip_space();
            if (peek() == ',') {
              ++pos_;
              continue;
            }
            if (peek() == ']') {
              ++pos_;
              break;
            }
            throw error("expected ',' or ']' in the list of " + name);
          }
        }
      } else {
        if (!colon) throw error("expected ':' or '{' after " + name);
        values.push_back(scalar());
      }
      skip_space();
      if (peek() == ';' || peek() == ',') ++pos_;
    }
  }

  Error error(const std::string& what) const {
    int line = 1, column = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') ++line, column = 1;
      else ++column;
    }
    return Error(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

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
      throw error(std::string("expected a field name, found '") + (at_end() ? std::string("end of file")
                                                                            : std::string(1, peek())) + "'");
    const size_t start = pos_;
    while (!at_end() && ident_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  std::string string_literal() {
    const char quote = text_[pos_++];
    std::string out;
    while (true) {
      if (at_end() || text_[pos_] == '\n') throw error("unterminated string");
      char c = text_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (at_end()) throw error("unterminated string");
      c = text_[pos_++];
      switch (c) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': {
          int value = 0, digits = 0;
          while (digits < 2 && !at_end() && std::isxdigit(static_cast<unsigned char>(text_[pos_])))
            value = value * 16 + std::stoi(std::string(1, text_[pos_++]), nullptr, 16), ++digits;
          if (digits == 0) throw error("\\x without hex digits");
          out.push_back(static_cast<char>(value));
          break;
        }
        default:
          if (c >= '0' && c <= '7') {
            int value = c - '0', digits = 1;
            while (digits < 3 && !at_end() && text_[pos_] >= '0' && text_[pos_] <= '7')
              value = value * 8 + (text_[pos_++] - '0'), ++digits;
            out.push_back(static_cast<char>(value));
          } else {
            out.push_back(c);  // \" \' \\ \?
          }
      }
    }
    return out;
  }

  Json scalar() {
    skip_space();
    const char c = peek();
    if (c == '"' || c == '\'') {
      std::string value = string_literal();
      for (skip_space(); peek() == '"' || peek() == '\''; skip_space()) value += string_literal();  // "a" "b"
      return value;
    }
    const size_t start = pos_;
    if (c == '-' || c == '+') ++pos_;
    while (!at_end() && (ident_char(text_[pos_]) || text_[pos_] == '.' ||
                         ((text_[pos_] == '-' || text_[pos_] == '+') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E'))))
      ++pos_;
    std::string token = text_.substr(start, pos_ - start);
    if (token.empty() || token == "-" || token == "+") throw error("expected a value");
    if (token == "true" || token == "True" || token == "t") return true;
    if (token == "false" || token == "False" || token == "f") return false;
    std::string number = token;
    if (!number.empty() && (number.back() == 'f' || number.back() == 'F') && number.find_first_of("xX") == std::string::npos)
      number.pop_back();  // 1.5f
    char* end = nullptr;
    if (number.find_first_of(".eE") == std::string::npos || number.find_first_of("xX") != std::string::npos) {
      const long long v = std::strtoll(number.c_str(), &end, 0);
      if (end && *end == '\0') return v;
    }
    const char first = number.size() > 1 && (number[0] == '-' || number[0] == '+') ? number[1] : number[0];
    const double d = std::strtod(number.c_str(), &end);
    if (end && *end == '\0' && (std::isdigit(static_cast<unsigned char>(first)) || first == '.')) return d;
    if (std::isalpha(static_cast<unsigned char>(token[0])) || token[0] == '_') return token;  // an enum value
    if (token == "-inf" || token == "inf" || token == "nan") return token;
    throw error("'" + token + "' is not a number, string or enum value");
  }

  const std::string& text_;
  std::string source_;
  size_t pos_ = 0;
};

}  // namespace

Json parse_text_proto(const std::string& text, const std::string& source) {
  Parser parser(text, source);
  return parser.message('\0');
}

Json read_text_proto_file(const std::string& path) { return parse_text_proto(read_text_file(path), path); }

}  // namespace mrcnn
