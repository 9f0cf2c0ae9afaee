// What the polygon label formats (via, labelme, yolo_seg) share: their instances as polygons with
// a class name or index, turned into samples under the readers' checks (points outside the image,
// fewer than 3 points, unknown classes), masks rasterised as pycocotools' frPyObjects does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/datasets.h"

namespace mrcnn::data {

// Points may lie this share of the image's width (x) or height (y) outside the image (a click past
// the edge in a label tool); the rasteriser crops the mask at the border. Farther out: invalid.
inline constexpr double kPolygonOutsideTolerance = 0.05;

// Label files larger than this are refused (a label file is text of a few KB).
inline constexpr int64_t kMaxLabelFileBytes = int64_t{64} << 20;

// One object: one or more polygons [x0, y0, x1, y1, ...] in pixels whose union is its mask.
struct PolygonInstance {
  std::string class_name;  // via, labelme: resolved to an id by the set's class list
  int64_t label = -1;      // yolo_seg: the class id already (index + 1)
  std::vector<std::vector<double>> polygons;
  std::string where;  // "file: region 3", for messages
};

struct PolygonImage {
  Sample sample;  // image_path, size (and embedded_image_json for LabelMe's imageData)
  std::vector<PolygonInstance> instances;
};

// A circle or ellipse (radii rx, ry, rotated by theta radians) as a polygon of
// ellipse_vertex_count(max(rx, ry)) vertices, vertex k at angle 2 pi k / n.
std::vector<double> ellipse_polygon(double cx, double cy, double rx, double ry, double theta = 0);
// max(16, ceil(pi * sqrt(5 r))): the polygon stays within 0.1 px of the curve.
int ellipse_vertex_count(double radius);

// The class ids of class names: a label map's (data.*.label_map) when given, else the names found
// in the set sorted alphabetically, numbered from 1; Error when there are more names than the
// model has classes (a typo would shift every id after it).
std::map<std::string, int64_t> class_ids(const std::vector<PolygonImage>& images, const DatasetSpec& spec);

// The samples of a polygon set: each instance's mask (union of its polygons), box (the mask's),
// and label; bad instances and images handled by the spec's policy and counted in report.
std::vector<Sample> polygon_samples(std::vector<PolygonImage> images, const DatasetSpec& spec, ReadReport& report,
                                    const std::map<std::string, int64_t>& classes);

// The width and height of an image file from its header (decoded when the header is not
// understood); Error naming the file when it is missing or not an image.
std::pair<int64_t, int64_t> image_file_size(const std::string& path, int64_t max_pixels);

// JSON values of a label file, checked: Error "<where>: <key> ..." instead of a library exception.
double json_number(const nlohmann::json& object, const std::string& key, const std::string& where);
std::string json_text(const nlohmann::json& object, const std::string& key, const std::string& where);

// A label file's JSON (the JSON reader's limits, and at most kMaxLabelFileBytes).
nlohmann::json read_label_json(const std::string& path);

}  // namespace mrcnn::data
