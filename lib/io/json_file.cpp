#include "io/json_file.h"

#include <algorithm>

#include "core/error.h"
#include "io/atomic_file.h"

namespace mrcnn {

namespace {

Error parse_error(const nlohmann::json::parse_error& e, const std::string& text, const std::string& source) {
  {
    // e.byte is 1-based and points one past the offending character.
    const size_t offset = std::min(e.byte > 0 ? e.byte - 1 : 0, text.size());
    const size_t line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n');
    const size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
    const size_t column = line_start == std::string::npos || offset == 0 ? offset + 1 : offset - line_start;
    std::string reason = e.what();
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line L, column C: <reason>"
    const auto colon = reason.find(": ");
    if (colon != std::string::npos) reason = reason.substr(colon + 2);
    return Error(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": malformed JSON: " + reason);
  }
}

}  // namespace

Json parse_json(const std::string& text, const std::string& source) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw parse_error(e, text, source);
  }
}

nlohmann::json read_json_data_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw parse_error(e, text, path);
  }
}

Json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

void write_json_file(const std::string& path, const Json& doc) { write_file_atomic(path, doc.dump(2) + "\n"); }

}  // namespace mrcnn
