// YOLO segmentation label files (data.*.format yolo_seg): see data/label_formats.h.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "data/label_formats.h"
#include "data/polygon_sets.h"
#include "io/atomic_file.h"
#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn::data {
namespace fs = std::filesystem;
namespace {

std::string trim(std::string text) {
  const auto hash = text.find(" #");
  if (hash != std::string::npos) text.erase(hash);
  const auto first = text.find_first_not_of(" \t\r"), last = text.find_last_not_of(" \t\r");
  text = first == std::string::npos ? "" : text.substr(first, last - first + 1);
  if (text.size() >= 2 && (text.front() == '\'' || text.front() == '"') && text.back() == text.front())
    text = text.substr(1, text.size() - 2);
  return text;
}

std::string read_small_file(const std::string& path) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  if (!ec && bytes > static_cast<uintmax_t>(kMaxLabelFileBytes))
    throw Error(path + ": file of " + std::to_string(bytes) + " bytes is larger than the limit of " +
                std::to_string(kMaxLabelFileBytes));
  return read_text_file(path);
}

// "k: name" entries (a YAML map) into names[k]; Error unless the indices are 0..n-1, each once.
void add_indexed_name(const std::string& entry, std::map<int64_t, std::string>& indexed, const std::string& where) {
  const auto colon = entry.find(':');
  const std::string index = colon == std::string::npos ? "" : trim(entry.substr(0, colon));
  if (index.empty() || index.size() > 9 || !std::all_of(index.begin(), index.end(), ::isdigit) ||
      !indexed.emplace(std::stoll(index), trim(entry.substr(colon + 1))).second)
    throw Error(where + ": '" + text_preview(entry) + "' is not a new 'index: name' entry");
}

std::vector<std::string> names_in_order(const std::map<int64_t, std::string>& indexed, const std::string& where) {
  std::vector<std::string> names;
  for (const auto& [index, name] : indexed) {
    if (index != static_cast<int64_t>(names.size())) throw Error(where + ": the names' indices must be 0, 1, 2, ...");
    names.push_back(name);
  }
  return names;
}

// The entries of a flow list "[a, b]" (as block entries "- a") or a flow map "{0: a}".
std::vector<std::string> flow_entries(const std::string& flow, const std::string& where) {
  if (flow.size() < 2 || (flow.front() != '[' && flow.front() != '{') || flow.back() != (flow.front() == '[' ? ']' : '}'))
    throw Error(where + ": names must be a list [a, b] or a map {0: a}");
  std::vector<std::string> entries;
  std::istringstream items(flow.substr(1, flow.size() - 2));
  std::string item;
  while (std::getline(items, item, ',')) entries.push_back((flow.front() == '[' ? "- " : "") + trim(item));
  return entries;
}

// Block entries "- a" (a list) or "0: a" (a map) as names in index order.
std::vector<std::string> names_of_entries(const std::vector<std::string>& entries, const std::string& where) {
  std::vector<std::string> names;
  std::map<int64_t, std::string> indexed;
  for (const auto& entry : entries) {
    if (entry.rfind("- ", 0) == 0) names.push_back(trim(entry.substr(2)));
    else add_indexed_name(entry, indexed, where);
  }
  if (!names.empty() && !indexed.empty()) throw Error(where + ": names mixes a list and a map");
  return names.empty() ? names_in_order(indexed, where) : names;
}

// The value of data.yaml's names: key: a flow list [a, b], a flow map {0: a}, or the indented
// block lines that follow ("- a" or "0: a").
std::vector<std::string> yaml_names(const std::string& text, const std::string& path) {
  std::istringstream in(text);
  std::string line, flow;
  std::vector<std::string> block;
  bool inside = false;
  int line_number = 0, names_line = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!inside && line.rfind("names:", 0) == 0) {
      inside = true, names_line = line_number;
      flow = trim(line.substr(6));
    } else if (inside && flow.empty() && !line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      if (!trim(line).empty()) block.push_back(trim(line));
    } else if (inside && !flow.empty() && (flow.back() != ']' && flow.back() != '}')) {
      flow += " " + trim(line);  // a flow list over several lines
    } else if (inside && !trim(line).empty()) {
      break;
    }
  }
  const std::string where = path + ":" + std::to_string(names_line);
  if (!inside) throw Error(path + ": no 'names:' key");
  return names_of_entries(flow.empty() ? block : flow_entries(flow, where), where);
}

// One line "class x1 y1 x2 y2 ..." as an instance in pixels; Error naming file and line.
PolygonInstance parse_label_line(const std::string& line, const std::string& where, const Sample& s,
                                 size_t class_count) {
  std::istringstream in(line);
  std::string token;
  in >> token;
  if (token.empty() || token.size() > 9 || !std::all_of(token.begin(), token.end(), ::isdigit))
    throw Error(where + ": class index '" + text_preview(token) + "' is not a whole number >= 0");
  PolygonInstance instance;
  instance.where = where;
  const int64_t index = std::stoll(token);
  if (class_count > 0 && index >= static_cast<int64_t>(class_count))
    throw Error(where + ": class index " + token + " is not in data.*.names (" + std::to_string(class_count) + " names)");
  instance.label = index + 1;  // 0 is the background
  std::vector<double> xy;
  while (in >> token) {
    char* end = nullptr;
    const double v = std::strtod(token.c_str(), &end);
    if (*end != '\0' || !std::isfinite(v)) throw Error(where + ": '" + text_preview(token) + "' is not a number");
    xy.push_back(v * (xy.size() % 2 ? s.height : s.width));
  }
  if (xy.size() % 2) throw Error(where + ": an odd count of coordinates (x y pairs expected)");
  instance.polygons.push_back(std::move(xy));
  return instance;
}

// The instances of a label file; false when the file cannot be read (reported).
bool read_label_file(const std::string& path, const DatasetSpec& spec, ReadReport& report, size_t class_count,
                     PolygonImage& image) {
  std::string text;
  try {
    text = read_small_file(path);
  } catch (const Error& e) {
    invalid_record(spec, report, e.what(), true);
    return false;
  }
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      image.instances.push_back(parse_label_line(line, path + ":" + std::to_string(number), image.sample, class_count));
    } catch (const Error& e) {
      invalid_record(spec, report, e.what(), false);
    }
  }
  return true;
}

// Label files whose image is not in the images folder: reported.
void report_orphan_labels(const std::set<std::string>& stems, const DatasetSpec& spec, ReadReport& report) {
  std::error_code ec;
  std::vector<std::string> orphans;
  for (const auto& entry : fs::directory_iterator(spec.annotations, ec))
    if (entry.path().extension() == ".txt" && !stems.count(entry.path().stem().string()))
      orphans.push_back(entry.path().string());
  std::sort(orphans.begin(), orphans.end());
  for (const auto& path : orphans) invalid_record(spec, report, path + ": label file without an image in " + spec.images, true);
}

}  // namespace

std::vector<Sample> read_yolo_seg(const DatasetSpec& spec, ReadReport& report) {
  std::error_code ec;
  if (!fs::is_directory(spec.annotations, ec))
    throw Error(spec.annotations + ": label folder does not exist (data.*.annotations of a yolo_seg set)");
  const std::vector<std::string> names = spec.names.empty() ? std::vector<std::string>{} : read_yolo_names(spec.names);
  std::vector<PolygonImage> images;
  std::set<std::string> stems;
  for (const auto& path : expand_image_paths({spec.images})) {
    PolygonImage image;
    image.sample.image_path = path;
    const std::string stem = fs::path(path).stem().string();
    stems.insert(stem);
    const fs::path labels = fs::path(spec.annotations) / (stem + ".txt");
    try {
      std::tie(image.sample.width, image.sample.height) = image_file_size(path, spec.max_image_pixels);
    } catch (const Error& e) {
      invalid_record(spec, report, e.what(), true);
      continue;
    }
    // No label file: a negative image (Ultralytics' rule).
    if (!fs::exists(labels, ec) || read_label_file(labels.string(), spec, report, names.size(), image))
      images.push_back(std::move(image));
  }
  report_orphan_labels(stems, spec, report);
  std::map<std::string, int64_t> classes;
  for (size_t k = 0; k < names.size(); ++k) classes[names[k]] = static_cast<int64_t>(k) + 1;
  return polygon_samples(std::move(images), spec, report, classes);
}

std::vector<std::string> read_yolo_names(const std::string& path) {
  const std::string text = read_small_file(path);
  const std::string ext = fs::path(path).extension().string();
  std::vector<std::string> names;
  if (ext == ".yaml" || ext == ".yml") {
    names = yaml_names(text, path);
  } else {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
      if (!trim(line).empty()) names.push_back(trim(line));
  }
  if (names.empty()) throw Error(path + ": no class names");
  return names;
}

}  // namespace mrcnn::data
