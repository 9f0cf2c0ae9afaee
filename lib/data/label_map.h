// Class names by id, from a TF OD API label_map.pbtxt or a JSON file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace mrcnn::data {

// The largest class id: the TF OD API's label map ids are int32.
inline constexpr int64_t kMaxLabelId = 2147483647;

class LabelMap {
 public:
  LabelMap() = default;

  // label_map.pbtxt (item { id: 1 name: 'cat' display_name: 'Cat' } ...), or JSON: either
  // {"1": "cat", ...} or [{"id": 1, "name": "cat"}, ...]. Ids from 1 to kMaxLabelId, each once,
  // with a name (display_name wins); id 0 only for 'background', which is skipped (the TF OD API's
  // rules). Throws Error naming file, line and problem.
  static LabelMap read(const std::string& path);
  static LabelMap parse_pbtxt(const std::string& text, const std::string& source);
  // The JSON forms above, already parsed (a label map file, a model file's metadata), checked by
  // the same rules; may be empty. Throws Error naming source and the offending key or item.
  static LabelMap from_json(const nlohmann::json& doc, const std::string& source);

  void set(int64_t id, const std::string& name) { names_[id] = name; }
  bool empty() const { return names_.empty(); }
  // The display name, else the name, else "class N".
  std::string name(int64_t id) const;
  const std::map<int64_t, std::string>& names() const { return names_; }

 private:
  std::map<int64_t, std::string> names_;
};

}  // namespace mrcnn::data
