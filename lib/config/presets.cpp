#include "config/presets.h"

#include <utility>

#include "config/config.h"
#include "core/error.h"

namespace mrcnn::config {

// Defined in the generated presets_data.cpp: {name, file text} for every configs/*.json.
extern const std::vector<std::pair<std::string, std::string>> kPresetFiles;

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> list;
    for (const auto& [name, text] : kPresetFiles) {
      const Json doc = parse_json(text, "configs/" + name + ".json");
      list.push_back({name, doc.value("description", std::string()), text});
    }
    return list;
  }();
  return all;
}

const Preset& find_preset(const std::string& name) {
  std::string names;
  for (const auto& preset : presets()) {
    if (preset.name == name) return preset;
    names += (names.empty() ? "" : ", ") + preset.name;
  }
  throw Error("unknown preset '" + name + "', expected one of: " + names);
}

}  // namespace mrcnn::config
