// JSON documents read from and written to files, with errors that point at file, line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace mrcnn {

// Key order is kept so that files we rewrite read like the user wrote them.
using Json = nlohmann::ordered_json;

// Deepest nesting of arrays and objects any JSON input may have; deeper documents are refused
// before they are built (deep values crash recursive code: printing, comparing, copying).
inline constexpr size_t kMaxJsonDepth = 256;

// Parses text; throws Error "<source>:<line>:<column>: <what is wrong>" on malformed JSON, nesting
// deeper than kMaxJsonDepth and numbers beyond a 64-bit float (such as 1e400).
Json parse_json(const std::string& text, const std::string& source);

// Reads and parses a file (errors as above, or "cannot read").
Json read_json_file(const std::string& path);

// The same into nlohmann's plain json (sorted keys): faster for large data files whose key order
// does not matter (COCO annotations and results).
nlohmann::json read_json_data_file(const std::string& path);

// parse_json into plain json, for text already read; first_line numbers the text's first line in
// errors (a metrics.jsonl record parsed on its own: "<file>:<its line>:<column>").
nlohmann::json parse_json_data(const std::string& text, const std::string& source, size_t first_line = 1);

// A value for error messages: compact JSON cut to at most max_chars characters ("..." at the end
// when cut), built without ever serialising more than that, however large or deep the value.
std::string json_preview(const Json& value, size_t max_chars = 60);
std::string json_preview(const nlohmann::json& value, size_t max_chars = 60);

// Text (a key, a command-line value) cut the same way, for error messages; control characters
// are escaped (\n, \x01), so that the message stays one line.
std::string text_preview(std::string_view text, size_t max_chars = 60);

// Pretty-prints (2-space indent, trailing newline) and writes atomically.
void write_json_file(const std::string& path, const Json& doc);

}  // namespace mrcnn
