// Experiment configurations: load a JSON file, validate it against the key table, resolve it
// against the defaults, read and edit keys by path, and compare two configurations.
#pragma once

#include <string>
#include <vector>

#include "config/schema.h"
#include "io/json_file.h"

namespace mrcnn::config {

// One thing wrong with a configuration, at a key path ("" for the document itself).
struct Problem {
  std::string key;
  std::string message;
  // The key is cut for display: an unknown key may be megabytes long.
  std::string str() const { return key.empty() ? message : text_preview(key, 100) + ": " + message; }
};

// Reads a configuration file (a JSON object of overrides); throws Error if unreadable or malformed.
Json load_config_file(const std::string& path);

// Every problem with a configuration: unknown keys (with a did-you-mean), wrong types,
// out-of-range values and values inconsistent with each other.
std::vector<Problem> validate(const Json& doc);

// Throws one Error listing every problem, each line "<source>: <key>: <message>", if any.
void require_valid(const Json& doc, const std::string& source);

// The full configuration: every key present, defaults where the document is silent, single
// values of list keys made lists. The document must be valid.
Json resolve(const Json& doc);

// load_config_file + require_valid + resolve.
Json load_resolved(const std::string& path);

// The resolved value of a key or section; throws Error for an unknown path (with a did-you-mean).
Json get_value(const Json& resolved, const std::string& path);

// Turns command-line text into a value of the key's type: an integer key refuses "abc", lists
// and objects are JSON, strings may be bare. Throws Error naming key, text and expectation.
Json parse_value(const std::string& path, const std::string& text);

// Sets a key or replaces a section in the document (creating the sections on the way).
void set_value(Json& doc, const std::string& path, const Json& value);

// Applies "key.path=value" assignments (each typed by parse_value) to the document; an error
// names the source file and the assignment.
void apply_assignments(Json& doc, const std::vector<std::string>& assignments, const std::string& source);

// One line per path-valued key of a resolved configuration whose file or folder does not exist
// ("data.train.images: 'x/' does not exist ..."): configurations are often written before the data.
std::vector<std::string> missing_paths(const Json& resolved);

// Keys whose values differ between two resolved configurations, in key order.
struct Difference {
  std::string key;
  Json a, b;
};
std::vector<Difference> diff(const Json& resolved_a, const Json& resolved_b);

// " (did you mean 'model.num_classes'?)" or "" when nothing is close.
std::string did_you_mean(const std::string& unknown_path);

// A value for display: strings bare, everything else as compact JSON.
std::string format_value(const Json& value);

}  // namespace mrcnn::config
