#include "data/polygon_sets.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "data/label_map.h"
#include "io/atomic_file.h"
#include "io/image_file.h"
#include "io/json_file.h"
#include "io/tiff_file.h"

namespace mrcnn::data {
namespace fs = std::filesystem;
namespace {

// Error text when a point is too far outside the image; empty when every point is usable.
std::string polygon_problem(const std::vector<double>& xy, int64_t height, int64_t width) {
  if (xy.size() < 6 || xy.size() % 2) return "a polygon needs at least 3 points (x, y), has " + std::to_string(xy.size()) + " numbers";
  const double margin_x = kPolygonOutsideTolerance * width, margin_y = kPolygonOutsideTolerance * height;
  for (size_t i = 0; i < xy.size(); i += 2) {
    const double x = xy[i], y = xy[i + 1];
    if (!(x >= -margin_x && x <= width + margin_x && y >= -margin_y && y <= height + margin_y))
      return "point " + std::to_string(i / 2) + " (" + std::to_string(x) + ", " + std::to_string(y) +
             ") is outside the " + std::to_string(width) + "x" + std::to_string(height) + " image";
  }
  return "";
}

// The instance's label, or an error text.
int64_t instance_label(const PolygonInstance& instance, const std::map<std::string, int64_t>& classes,
                       std::string& problem) {
  if (instance.label >= 0) return instance.label;
  const auto it = classes.find(instance.class_name);
  if (it == classes.end()) problem = "class '" + text_preview(instance.class_name) + "' is not in the label map";
  return it == classes.end() ? -1 : it->second;
}

// The union of the instance's polygons, or an error text.
eval::Rle instance_mask(const PolygonInstance& instance, const Sample& s, std::string& problem) {
  std::vector<eval::Rle> parts;
  for (const auto& xy : instance.polygons) {
    problem = polygon_problem(xy, s.height, s.width);
    if (!problem.empty()) return {};
    try {
      parts.push_back(eval::rle_from_polygon(xy, s.height, s.width));
    } catch (const Error& e) {
      problem = e.what();
      return {};
    }
  }
  eval::Rle mask = parts.size() == 1 ? parts.front() : eval::rle_merge(parts);
  if (parts.empty() || mask.area() == 0) problem = "empty mask";
  return mask;
}

void add_instance(Sample& s, const PolygonInstance& instance, const DatasetSpec& spec, ReadReport& report,
                  const std::map<std::string, int64_t>& classes) {
  std::string problem;
  const int64_t label = instance_label(instance, classes, problem);
  if (problem.empty() && (label < 1 || (spec.num_classes > 0 && label >= spec.num_classes)))
    problem = "class " + std::to_string(label) + " is not a class of this model (ids 1.." +
              std::to_string(spec.num_classes - 1) + ")";
  eval::Rle mask;
  if (problem.empty()) mask = instance_mask(instance, s, problem);
  if (!problem.empty()) {
    invalid_record(spec, report, instance.where + ": " + problem, false);
    return;
  }
  const auto b = mask.bbox();
  s.boxes.push_back({static_cast<float>(b[0]), static_cast<float>(b[1]), static_cast<float>(b[0] + b[2]),
                     static_cast<float>(b[1] + b[3])});
  s.labels.push_back(label);
  s.mask_rles.push_back(std::move(mask));
}

}  // namespace

int ellipse_vertex_count(double radius) {
  if (!(radius > 0)) radius = 0;  // NaN too: the count must stay a number
  const double n = std::ceil(M_PI * std::sqrt(5 * radius));
  return static_cast<int>(std::clamp(n, 16.0, 4096.0));
}

std::vector<double> ellipse_polygon(double cx, double cy, double rx, double ry, double theta) {
  const int n = ellipse_vertex_count(std::max(rx, ry));
  std::vector<double> xy;
  for (int k = 0; k < n; ++k) {
    const double a = 2 * M_PI * k / n;
    const double u = rx * std::cos(a), v = ry * std::sin(a);
    xy.push_back(cx + u * std::cos(theta) - v * std::sin(theta));
    xy.push_back(cy + u * std::sin(theta) + v * std::cos(theta));
  }
  return xy;
}

std::map<std::string, int64_t> class_ids(const std::vector<PolygonImage>& images, const DatasetSpec& spec) {
  std::map<std::string, int64_t> ids;
  if (!spec.label_map.empty()) {
    const LabelMap map = LabelMap::read(spec.label_map);
    for (const auto& [id, name] : map.names()) ids[name] = id;
    return ids;
  }
  std::set<std::string> names;
  for (const auto& image : images)
    for (const auto& instance : image.instances)
      if (instance.label < 0) names.insert(instance.class_name);
  // A stray name would shift every id after it: refused, naming the names.
  if (spec.num_classes > 0 && static_cast<int64_t>(names.size()) >= spec.num_classes) {
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ", ") + text_preview(name, 40);
    throw Error(spec.annotations + ": " + std::to_string(names.size()) + " class names (" + text_preview(list, 300) +
                ") for model.num_classes " + std::to_string(spec.num_classes) +
                "; name the classes and their ids in data.*.label_map");
  }
  int64_t next = 1;
  for (const auto& name : names) ids[name] = next++;
  return ids;
}

std::vector<Sample> polygon_samples(std::vector<PolygonImage> images, const DatasetSpec& spec, ReadReport& report,
                                    const std::map<std::string, int64_t>& classes) {
  for (const auto& [name, id] : classes) report.class_names[id] = name;
  std::vector<Sample> samples;
  for (auto& image : images) {
    Sample& s = image.sample;
    s.image_id = static_cast<int64_t>(samples.size()) + 1;
    for (const auto& instance : image.instances) add_instance(s, instance, spec, report, classes);
    report.annotations += static_cast<int64_t>(s.boxes.size());
    samples.push_back(std::move(s));
  }
  return samples;
}

std::pair<int64_t, int64_t> image_file_size(const std::string& path, int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || !fs::is_regular_file(path, ec)) throw Error(path + ": cannot read the image");
  std::string head(1 << 20, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (const auto dims = image_header_dimensions(head)) return {dims->width, dims->height};
  // Else the whole file: TIFFs (whose directory often follows the pixels) through our own reader,
  // which reads any band count and depth; what it leaves aside, and other formats, through OpenCV.
  const std::string bytes = read_text_file(path);
  if (is_tiff(bytes)) try {
      const cv::Mat image = decode_tiff(bytes, path, max_pixels);
      return {image.cols, image.rows};
    } catch (const TiffUnsupported&) {
    }
  const cv::Mat image = decode_image_rgb(bytes, path, max_pixels);
  return {image.cols, image.rows};
}

double json_number(const nlohmann::json& object, const std::string& key, const std::string& where) {
  if (!object.is_object() || !object.contains(key) || !object.at(key).is_number())
    throw Error(where + ": '" + key + "' must be a number");
  return object.at(key).get<double>();
}

std::string json_text(const nlohmann::json& object, const std::string& key, const std::string& where) {
  if (!object.is_object() || !object.contains(key) || !object.at(key).is_string())
    throw Error(where + ": '" + key + "' must be a string");
  return object.at(key).get<std::string>();
}

nlohmann::json read_label_json(const std::string& path) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  if (!ec && bytes > static_cast<uintmax_t>(kMaxLabelFileBytes))
    throw Error(path + ": label file of " + std::to_string(bytes) + " bytes is larger than the limit of " +
                std::to_string(kMaxLabelFileBytes));
  return read_json_data_file(path);
}

}  // namespace mrcnn::data
