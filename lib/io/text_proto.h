// The protobuf text format (pipeline.config, label_map.pbtxt) read without a schema into a
// generic tree: every message is a JSON object whose fields map to arrays of values (a field
// may repeat), values being numbers, strings, booleans/enum names (strings) or nested messages.
#pragma once

#include <string>

#include "io/json_file.h"

namespace mrcnn {

// Comments (#), nested messages with or without ':' and with {} or <>, repeated fields and
// [a, b] lists, adjacent string literals, escapes (\n \t \" \' \\ octal, hex). Throws Error
// "source:line:column: what" for malformed text.
Json parse_text_proto(const std::string& text, const std::string& source);
Json read_text_proto_file(const std::string& path);

}  // namespace mrcnn
