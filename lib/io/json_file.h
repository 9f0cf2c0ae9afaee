// JSON documents read from and written to files, with errors that point at file, line and column.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace mrcnn {

// Key order is kept so that files we rewrite read like the user wrote them.
using Json = nlohmann::ordered_json;

// Parses text; on malformed JSON throws Error "<source>:<line>:<column>: malformed JSON: <reason>".
Json parse_json(const std::string& text, const std::string& source);

// Reads and parses a file (errors as above, or "cannot read").
Json read_json_file(const std::string& path);

// The same into nlohmann's plain json (sorted keys): faster for large data files whose key order
// does not matter (COCO annotations and results).
nlohmann::json read_json_data_file(const std::string& path);

// Pretty-prints (2-space indent, trailing newline) and writes atomically.
void write_json_file(const std::string& path, const Json& doc);

}  // namespace mrcnn
