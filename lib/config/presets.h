// Named starting configurations: the files in configs/, compiled into the tools so that
// `mrcnn-config init --preset NAME` works from any directory.
#pragma once

#include <string>
#include <vector>

namespace mrcnn::config {

struct Preset {
  std::string name;         // file name without .json
  std::string description;  // the file's "description" key
  std::string text;         // the file as shipped
};

const std::vector<Preset>& presets();

// Throws Error listing the known names when there is no such preset.
const Preset& find_preset(const std::string& name);

}  // namespace mrcnn::config
