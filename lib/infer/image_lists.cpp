#include "infer/image_lists.h"

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "io/image_file.h"

namespace mrcnn::infer {
namespace fs = std::filesystem;

std::vector<InferenceImage> images_from_paths(const std::vector<std::string>& inputs) {
  std::vector<InferenceImage> images;
  int64_t id = 1;
  for (const auto& path : expand_image_paths(inputs)) images.push_back({id++, path, path, "", -1});
  return images;
}

std::vector<InferenceImage> images_from_coco(const std::string& annotation_file, const std::string& image_root) {
  const Json doc = read_json_file(annotation_file);
  if (!doc.is_object() || !doc.contains("images") || !doc["images"].is_array())
    throw Error(annotation_file + ": expected a COCO object with an \"images\" list");
  std::vector<InferenceImage> images;
  for (size_t i = 0; i < doc["images"].size(); ++i) {
    const Json& image = doc["images"][i];
    if (!image.is_object() || !image.contains("id") || !image["id"].is_number_integer() ||
        !image.contains("file_name") || !image["file_name"].is_string())
      throw Error(annotation_file + ": images[" + std::to_string(i) + "]: expected {\"id\": integer, \"file_name\": string}");
    images.push_back(
        {image["id"].get<int64_t>(), (fs::path(image_root) / image["file_name"].get<std::string>()).string(), "", "", -1});
  }
  if (images.empty()) throw Error(annotation_file + ": lists no images");
  return images;
}

std::vector<InferenceImage> images_from_dataset(const data::DatasetSpec& spec) {
  data::ReadReport report;
  const std::vector<data::Sample> samples = data::read_dataset(spec, report);
  log::info("{}", report.summary(spec.annotations));
  std::vector<InferenceImage> images;
  for (const auto& s : samples) images.push_back({s.image_id, s.image_path, "", s.record_file, s.record_offset, s.embedded_image_json});
  if (images.empty()) throw Error(spec.annotations + ": the data set has no usable images");
  return images;
}

data::DatasetSpec inference_dataset(const Json& config, const std::string& name, int64_t max_image_pixels) {
  data::DatasetSpec spec = data::DatasetSpec::from_config(config, "data." + name);
  spec.on_invalid = data::InvalidPolicy::Skip;
  spec.max_image_pixels = max_image_pixels;
  return spec;
}

}  // namespace mrcnn::infer
