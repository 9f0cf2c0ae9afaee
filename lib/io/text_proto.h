// The protobuf text format (pipeline.config, label_map.pbtxt) read without a schema into a
// generic tree: every message is a JSON object whose fields map to arrays of values (a field
// may repeat), values being numbers, strings, booleans/enum names (strings) or nested messages.
#pragma once

#include <cstddef>
#include <string>

#include "io/json_file.h"

namespace mrcnn {

// Messages nested deeper than this are refused: real pipelines nest about 10 levels, and each
// level costs a stack frame while parsing.
inline constexpr int kMaxTextProtoDepth = 256;

// Comments (#), nested messages with or without ':' and with {} or <>, repeated fields and
// [a, b] lists, adjacent string literals, escapes (see decode_text_proto_string). Throws Error
// "source:line:column: what" for malformed text, text that is not UTF-8, nesting deeper than
// kMaxTextProtoDepth and numbers out of the range of a double. Integers beyond 64 bits are kept
// as doubles (whoever expects an integer refuses them).
Json parse_text_proto(const std::string& text, const std::string& source);
Json read_text_proto_file(const std::string& path);

// The quoted string literal whose opening quote is text[pos], decoded: \a \b \f \n \r \t \v \\ \'
// \" \?, octal \ooo, hex \xHH, \uXXXX and \UXXXXXXXX (written as UTF-8). Advances pos past the
// closing quote. Throws Error "what" (no location: pos is left at the problem, for the caller to
// name) for an unterminated literal, an unknown escape or a result that is not UTF-8.
std::string decode_text_proto_string(const std::string& text, size_t& pos);

// The offset of the first byte where text stops being valid UTF-8, or std::string::npos.
size_t invalid_utf8_offset(const std::string& text);

}  // namespace mrcnn
