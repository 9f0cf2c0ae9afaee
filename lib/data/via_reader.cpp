// VGG Image Annotator JSON (data.*.format via): see data/label_formats.h.
#include <filesystem>

#include "core/error.h"
#include "data/label_formats.h"
#include "data/polygon_sets.h"
#include "io/image_bands.h"
#include "io/json_file.h"

namespace mrcnn::data {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

std::vector<double> number_list(const json& shape, const std::string& key, const std::string& where) {
  if (!shape.contains(key) || !shape.at(key).is_array()) throw Error(where + ": '" + key + "' must be a list of numbers");
  std::vector<double> values;
  for (const auto& v : shape.at(key)) {
    if (!v.is_number()) throw Error(where + ": '" + key + "' must be a list of numbers");
    values.push_back(v.get<double>());
  }
  return values;
}

// A region's shape_attributes as a polygon in pixels; Error for other shapes and bad fields.
std::vector<double> region_polygon(const json& shape, const std::string& where) {
  const std::string name = json_text(shape, "name", where + " shape_attributes");
  if (name == "polygon" || name == "polyline") {
    const auto xs = number_list(shape, "all_points_x", where), ys = number_list(shape, "all_points_y", where);
    if (xs.size() != ys.size()) throw Error(where + ": all_points_x and all_points_y differ in length");
    std::vector<double> xy;
    for (size_t i = 0; i < xs.size(); ++i) xy.insert(xy.end(), {xs[i], ys[i]});
    return xy;
  }
  const auto at = [&](const char* key) { return json_number(shape, key, where); };
  if (name == "rect") {
    const double x = at("x"), y = at("y"), w = at("width"), h = at("height");
    return {x, y, x + w, y, x + w, y + h, x, y + h};
  }
  if (name == "circle") return ellipse_polygon(at("cx"), at("cy"), at("r"), at("r"));
  if (name == "ellipse")
    return ellipse_polygon(at("cx"), at("cy"), at("rx"), at("ry"), shape.contains("theta") ? at("theta") : 0.0);
  throw Error(where + ": shape '" + text_preview(name) + "' is not an area (polygon, rect, circle or ellipse)");
}

// The region attribute's class name: a text (text field, dropdown, radio) or the one checked key of
// a checkbox attribute; "" when the region has none.
std::string region_class(const json& region, const std::string& attribute) {
  const json* attributes = region.contains("region_attributes") ? &region.at("region_attributes") : nullptr;
  if (!attributes || !attributes->is_object() || !attributes->contains(attribute)) return "";
  const json& value = attributes->at(attribute);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  std::string checked;
  if (value.is_object())
    for (const auto& [key, on] : value.items())
      if (on == true) checked = checked.empty() ? key : "";  // more than one: none
  return checked;
}

// The regions of an image entry in order: a list (VIA 2) or a {"0": region, ...} object (VIA 1).
std::vector<const json*> regions_of(const json& entry, const std::string& where) {
  std::vector<const json*> regions;
  if (!entry.contains("regions")) return regions;
  const json& r = entry.at("regions");
  if (!r.is_array() && !r.is_object()) throw Error(where + ": 'regions' must be a list or an object");
  for (const auto& region : r) regions.push_back(&region);
  return regions;
}

void add_region(PolygonImage& image, const json& region, const std::string& where, const DatasetSpec& spec,
                ReadReport& report) {
  PolygonInstance instance;
  instance.where = where;
  try {
    if (!region.is_object() || !region.contains("shape_attributes")) throw Error(where + ": no shape_attributes");
    instance.polygons.push_back(region_polygon(region.at("shape_attributes"), where));
  } catch (const Error& e) {
    invalid_record(spec, report, e.what(), false);
    return;
  }
  instance.class_name = region_class(region, spec.class_attribute);
  if (instance.class_name.empty() && spec.num_classes == 2) instance.label = 1;  // one class: no attribute needed
  if (instance.class_name.empty() && instance.label < 0) {
    invalid_record(spec, report, where + ": no region attribute '" + spec.class_attribute +
                                     "' naming its class (data.*.class_attribute)", false);
    return;
  }
  image.instances.push_back(std::move(instance));
}

// One image entry: its image's size and its regions (a missing image skips the entry, reported).
void read_entry(const std::string& key, const json& entry, const DatasetSpec& spec, ReadReport& report,
                std::vector<PolygonImage>& images) {
  const std::string where = spec.annotations + ": image '" + text_preview(key) + "'";
  PolygonImage image;
  std::vector<const json*> regions;
  try {
    const std::string filename = json_text(entry, "filename", where);
    image.sample.image_path = (fs::path(spec.images) / filename).string();
    std::tie(image.sample.width, image.sample.height) = image_file_size(first_band_path(image.sample.image_path, spec.layout), spec.max_image_pixels);
    regions = regions_of(entry, where);
  } catch (const Error& e) {
    invalid_record(spec, report, e.what(), true);
    return;
  }
  for (size_t k = 0; k < regions.size(); ++k)
    add_region(image, *regions[k], where + " region " + std::to_string(k), spec, report);
  images.push_back(std::move(image));
}

}  // namespace

std::vector<Sample> read_via(const DatasetSpec& spec, ReadReport& report) {
  const json doc = read_label_json(spec.annotations);
  const json& files = doc.is_object() && doc.contains("_via_img_metadata") ? doc.at("_via_img_metadata") : doc;
  if (!files.is_object())
    throw Error(spec.annotations + ": not a VIA project or region export (an object of images was expected)");
  std::vector<PolygonImage> images;
  for (const auto& [key, entry] : files.items()) read_entry(key, entry, spec, report, images);
  const auto classes = class_ids(images, spec);
  return polygon_samples(std::move(images), spec, report, classes);
}

}  // namespace mrcnn::data
