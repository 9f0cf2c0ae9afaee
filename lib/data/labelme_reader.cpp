// LabelMe JSON files (data.*.format labelme): see data/label_formats.h.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "data/label_formats.h"
#include "data/polygon_sets.h"
#include "io/image_bands.h"
#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn::data {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

// RFC 4648 base64 (padding and whitespace allowed); Error on any other character.
std::string decode_base64(const std::string& text, const std::string& where) {
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (const char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=' || std::isspace(static_cast<unsigned char>(c))) continue;
    else throw Error(where + ": imageData is not base64");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if ((count += 6) >= 8) out.push_back(static_cast<char>((bits >> (count -= 8)) & 0xFF));
  }
  return out;
}

// The shape's points as [x0, y0, x1, y1, ...]; Error unless a list of [x, y] number pairs.
std::vector<double> shape_points(const json& shape, const std::string& where) {
  if (!shape.contains("points") || !shape.at("points").is_array()) throw Error(where + ": 'points' must be a list");
  std::vector<double> xy;
  for (const auto& p : shape.at("points")) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number())
      throw Error(where + ": each point must be [x, y] numbers");
    xy.insert(xy.end(), {p[0].get<double>(), p[1].get<double>()});
  }
  return xy;
}

// A shape as a polygon in pixels; Error for shapes that are not areas and bad points.
std::vector<double> shape_polygon(const json& shape, const std::string& where) {
  const std::string type =
      shape.contains("shape_type") && shape.at("shape_type").is_string() ? shape.at("shape_type").get<std::string>() : "polygon";
  const std::vector<double> xy = shape_points(shape, where);
  if (type == "polygon") return xy;
  if ((type == "rectangle" || type == "circle") && xy.size() != 4)
    throw Error(where + ": a " + type + " needs 2 points");
  if (type == "rectangle") return {xy[0], xy[1], xy[2], xy[1], xy[2], xy[3], xy[0], xy[3]};
  if (type == "circle") {
    const double r = std::hypot(xy[2] - xy[0], xy[3] - xy[1]);
    return ellipse_polygon(xy[0], xy[1], r, r);
  }
  throw Error(where + ": shape_type '" + text_preview(type) + "' is not an area (polygon, rectangle or circle)");
}

// The image of a LabelMe file: imagePath next to the JSON, else in spec.images, else its imageData.
bool locate_image(const json& doc, const std::string& json_path, const DatasetSpec& spec, Sample& s) {
  std::error_code ec;
  std::string image_path = doc.contains("imagePath") && doc.at("imagePath").is_string() ? doc.at("imagePath").get<std::string>() : "";
  std::replace(image_path.begin(), image_path.end(), '\\', '/');  // saved on Windows
  std::vector<fs::path> candidates;
  if (!image_path.empty()) candidates.push_back(fs::path(json_path).parent_path() / image_path);
  if (!image_path.empty() && !spec.images.empty()) candidates.push_back(fs::path(spec.images) / fs::path(image_path).filename());
  for (const auto& candidate : candidates)
    if (fs::is_regular_file(first_band_path(candidate.string(), spec.layout), ec)) {  // band files: the first
      s.image_path = candidate.string();
      return true;
    }
  if (!doc.contains("imageData") || !doc.at("imageData").is_string() || doc.at("imageData").empty()) return false;
  s.image_path = json_path;
  s.embedded_image_json = json_path;
  return true;
}

void image_size(const json& doc, const std::string& where, const DatasetSpec& spec, Sample& s) {
  if (doc.contains("imageHeight") && doc.contains("imageWidth")) {
    const double h = json_number(doc, "imageHeight", where), w = json_number(doc, "imageWidth", where);
    if (!(h >= 1 && w >= 1 && h <= 1e6 && w <= 1e6 && h == std::floor(h) && w == std::floor(w)))
      throw Error(where + ": imageHeight and imageWidth must be positive whole numbers");
    s.height = static_cast<int64_t>(h), s.width = static_cast<int64_t>(w);
  } else if (!s.embedded_image_json.empty()) {
    const cv::Mat image = labelme_embedded_image(s.embedded_image_json, spec.max_image_pixels, spec.layout);
    s.height = image.rows, s.width = image.cols;
  } else {
    std::tie(s.width, s.height) = image_file_size(first_band_path(s.image_path, spec.layout), spec.max_image_pixels);
  }
}

// The shapes as instances: shapes with the same label and group_id join one instance.
void add_shapes(const json& shapes, const std::string& where, const DatasetSpec& spec, ReadReport& report,
                PolygonImage& image) {
  std::map<std::pair<std::string, int64_t>, size_t> groups;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const std::string at = where + " shape " + std::to_string(k);
    PolygonInstance instance;
    instance.where = at;
    try {
      instance.class_name = json_text(shapes[k], "label", at);
      instance.polygons.push_back(shape_polygon(shapes[k], at));
    } catch (const Error& e) {
      invalid_record(spec, report, e.what(), false);
      continue;
    }
    const json* group = shapes[k].contains("group_id") ? &shapes[k].at("group_id") : nullptr;
    if (group && group->is_number_integer()) {
      const auto [it, fresh] = groups.try_emplace({instance.class_name, group->get<int64_t>()}, image.instances.size());
      if (!fresh) {
        image.instances[it->second].polygons.push_back(instance.polygons.front());
        continue;
      }
    }
    image.instances.push_back(std::move(instance));
  }
}

void read_file(const std::string& path, const DatasetSpec& spec, ReadReport& report, std::vector<PolygonImage>& images) {
  PolygonImage image;
  json doc;
  try {
    doc = read_label_json(path);
    if (!doc.is_object() || !doc.contains("shapes") || !doc.at("shapes").is_array())
      throw Error(path + ": not a LabelMe file (no 'shapes' list)");
    if (!locate_image(doc, path, spec, image.sample))
      throw Error(path + ": no image: imagePath is not found next to it or in data.*.images, and no imageData");
    image_size(doc, path, spec, image.sample);
  } catch (const Error& e) {
    invalid_record(spec, report, e.what(), true);
    return;
  }
  add_shapes(doc.at("shapes"), path, spec, report, image);
  images.push_back(std::move(image));
}

}  // namespace

std::vector<Sample> read_labelme(const DatasetSpec& spec, ReadReport& report) {
  std::error_code ec;
  if (!fs::is_directory(spec.annotations, ec))
    throw Error(spec.annotations + ": LabelMe folder does not exist (data.*.annotations of a labelme set)");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(spec.annotations, ec))
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(spec.annotations + ": no LabelMe .json files in the folder");
  std::vector<PolygonImage> images;
  for (const auto& file : files) read_file(file, spec, report, images);
  const auto classes = class_ids(images, spec);
  return polygon_samples(std::move(images), spec, report, classes);
}

cv::Mat labelme_embedded_image(const std::string& json_path, int64_t max_pixels, const BandLayout& layout) {
  const json doc = read_label_json(json_path);
  const std::string data = json_text(doc, "imageData", json_path);
  return decode_image_bands(decode_base64(data, json_path), json_path + ": imageData", layout, max_pixels);
}

}  // namespace mrcnn::data
