#include "data/coco_export.h"

#include <filesystem>

#include "core/error.h"
#include "data/datasets.h"
#include "data/label_map.h"

namespace mrcnn::data {
namespace fs = std::filesystem;
namespace {

// The path as COCO's file_name: relative to the images folder when the file is inside it.
std::string file_name(const std::string& path, const std::string& images) {
  if (images.empty()) return path;
  const fs::path relative = fs::path(path).lexically_relative(images);
  if (relative.empty() || *relative.begin() == "..") return path;
  return relative.generic_string();
}

}  // namespace

Json export_coco_document(const Json& resolved, const std::string& key, ReadReport& report) {
  const DatasetSpec spec = DatasetSpec::from_config(resolved, key);
  if (spec.annotations.empty()) throw Error(key + ".annotations is empty: the configuration has no such set");
  std::vector<Sample> samples = read_dataset(spec, report);
  LabelMap names;
  if (!spec.label_map.empty()) names = LabelMap::read(spec.label_map);
  else
    for (const auto& [id, name] : report.class_names) names.set(id, name);
  for (auto& s : samples)
    if (s.embedded_image_json.empty()) s.image_path = file_name(s.image_path, spec.images);
  return coco_document(samples, spec.num_classes, names);
}

}  // namespace mrcnn::data
