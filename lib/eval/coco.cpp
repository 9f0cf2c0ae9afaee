#include "eval/coco.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "core/error.h"
#include "eval/parallel.h"
#include "io/atomic_file.h"
#include "io/json_tape.h"

// Every reader below is a template over the document type: nlohmann::json (documents built in
// memory, such as training's held-out set) or JsonView (files, read onto a tape: most of the
// time mrcnn-eval spends). Both have the same values, so the checks and messages are the same.

namespace mrcnn::eval {
namespace {

// A value for error messages, short whatever the input: scalars as JSON, else their kind.
template <class J>
std::string preview(const J& v) {
  if (v.is_array()) return "a list of " + std::to_string(v.size()) + " values";
  if (v.is_object()) return "an object";
  if (v.is_string() && v.template get<std::string>().size() > 40)
    return "a string of " + std::to_string(v.template get<std::string>().size()) + " characters";
  if constexpr (std::is_same_v<J, JsonView>) return preview(v.scalar());
  else return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// An integer that fits int64_t (ids, sizes), also written as a whole float such as 3.0.
template <class J>
std::optional<int64_t> as_int(const J& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.template get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.template get<int64_t>();
  if (!v.is_number_float()) return std::nullopt;
  const double d = v.template get<double>();
  if (!(d >= -9.2e18 && d <= 9.2e18) || d != std::floor(d)) return std::nullopt;  // inside int64, whole
  return static_cast<int64_t>(d);
}

template <class J>
int64_t require_int(const J& record, const char* key, const std::string& where) {
  if (!record.contains(key)) throw Error(where + ": missing \"" + key + "\"");
  const auto& v = record[key];
  if (const auto i = as_int(v)) return *i;
  throw Error(where + ": \"" + key + "\" must be an integer, found " + preview(v));
}

template <class J>
double require_number(const J& record, const char* key, const std::string& where) {
  if (!record.contains(key)) throw Error(where + ": missing \"" + key + "\"");
  const auto& v = record[key];
  if (!v.is_number()) throw Error(where + ": \"" + key + "\" must be a number, found " + preview(v));
  return v.template get<double>();
}

template <class J>
bool all_numbers(const J& list) {
  return std::all_of(list.begin(), list.end(), [](const auto& x) { return x.is_number(); });
}

template <class J>
std::optional<Box> read_bbox(const J& record, const std::string& where) {
  if (!record.contains("bbox")) return std::nullopt;
  const auto& b = record["bbox"];
  if (b.is_null() || (b.is_array() && b.empty())) return std::nullopt;
  if (!b.is_array() || b.size() != 4 || !all_numbers(b))
    throw Error(where + ": \"bbox\" must be [x, y, width, height], found " + preview(b));
  Box box;
  size_t i = 0;
  for (const auto& v : b) box[i++] = v.template get<double>();
  return box;
}

template <class J>
std::vector<double> read_polygon(const J& poly, size_t index, const std::string& where) {
  const std::string name = where + ": polygon " + std::to_string(index);
  if (!poly.is_array() || !all_numbers(poly))
    throw Error(name + " must be a list of numbers");
  if (poly.size() < 6 || poly.size() % 2 != 0)
    throw Error(name + " has " + std::to_string(poly.size()) +
                " coordinates; a polygon needs at least 3 points (x, y pairs)");
  std::vector<double> xy;
  xy.reserve(poly.size());
  for (const auto& v : poly) xy.push_back(v.template get<double>());
  try {
    check_polygon(xy);
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
  return xy;
}

// The "size" [height, width] of an RLE, checked as masks need it.
template <class J>
std::array<int64_t, 2> read_rle_size(const J& segm, const std::string& where) {
  const bool given = segm.contains("size");
  std::optional<int64_t> h, w;
  if (given) {
    const auto& size = segm["size"];
    if (size.is_array() && size.size() == 2) h = as_int(size[0]), w = as_int(size[1]);
  }
  if (!h || !w)
    throw Error(where + ": RLE \"segmentation\" needs \"size\": [height, width] (integers), found " +
                (given ? preview(segm["size"]) : std::string("none")));
  try {
    check_mask_size(*h, *w);
  } catch (const Error& e) {
    throw Error(where + ": RLE \"size\": " + e.what());
  }
  return {*h, *w};
}

// Uncompressed RLE counts: non-negative integers that sum exactly to height * width.
template <class J>
std::vector<uint32_t> read_runs(const J& counts, int64_t height, int64_t width, const std::string& where) {
  std::vector<uint32_t> runs;
  runs.reserve(counts.size());
  const uint64_t pixels = static_cast<uint64_t>(height * width);
  uint64_t sum = 0;
  size_t i = 0;
  for (const auto& c : counts) {
    if (!c.is_number_integer() || (!c.is_number_unsigned() && c.template get<int64_t>() < 0))
      throw Error(where + ": RLE counts must be non-negative integers, found " + preview(c) + " at " + std::to_string(i));
    const uint64_t run = c.template get<uint64_t>();
    if (run > pixels - sum)
      throw Error(where + ": RLE counts sum to more than the " + std::to_string(pixels) + " pixels of \"size\" [" +
                  std::to_string(height) + ", " + std::to_string(width) + "] (at count " + std::to_string(i) + ")");
    sum += run;
    runs.push_back(static_cast<uint32_t>(run));
    ++i;
  }
  if (sum != pixels)
    throw Error(where + ": RLE counts sum to " + std::to_string(sum) + " pixels, but \"size\" [" +
                std::to_string(height) + ", " + std::to_string(width) + "] has " + std::to_string(pixels));
  return runs;
}

template <class J>
Segmentation read_rle(const J& segm, const std::string& where) {
  Segmentation out;
  const auto [height, width] = read_rle_size(segm, where);
  out.height = height;
  out.width = width;
  if (!segm.contains("counts")) throw Error(where + ": RLE \"segmentation\" needs \"counts\"");
  const auto& counts = segm["counts"];
  if (counts.is_string()) {
    out.kind = Segmentation::Kind::CompressedRle;
    out.counts = counts.template get<std::string>();  // decoded, and its runs checked, when the mask is needed
    return out;
  }
  if (counts.is_array()) {
    out.kind = Segmentation::Kind::UncompressedRle;
    out.runs = read_runs(counts, height, width, where);
    return out;
  }
  throw Error(where + ": RLE \"counts\" must be a string or a list of run lengths, found " + preview(counts));
}

template <class J>
Segmentation read_segmentation(const J& segm, const std::string& where) {
  if (segm.is_object()) return read_rle(segm, where);
  if (!segm.is_array()) throw Error(where + ": \"segmentation\" must be polygons or an RLE object, found " + preview(segm));
  if (segm.empty()) throw Error(where + ": \"segmentation\" is an empty polygon list");
  Segmentation out;
  out.kind = Segmentation::Kind::Polygons;
  for (const auto& polygon : segm) out.polygons.push_back(read_polygon(polygon, out.polygons.size(), where));
  return out;
}

// An image's "height" and "width" where the record gives them (else -1): positive integers whose
// product a mask can have, since polygons are rasterised at this size.
template <class J>
void read_image_size(const J& record, const std::string& where, CocoImage& image) {
  for (const char* key : {"height", "width"}) {
    if (!record.contains(key)) continue;
    const int64_t v = require_int(record, key, where);
    if (v <= 0 || v > kMaxMaskPixels)
      throw Error(where + ": \"" + key + "\" is " + std::to_string(v) + "; expected a positive number of pixels");
    (key[0] == 'h' ? image.height : image.width) = v;
  }
  if (image.height > 0 && image.width > 0) try {
      check_mask_size(image.height, image.width);
    } catch (const Error& e) {
      throw Error(where + ": image " + e.what());
    }
}

// Turns the JSON library's and the allocator's exceptions into an Error naming the file.
template <typename Fn>
auto naming_source(const std::string& source, Fn fn) {
  try {
    return fn();
  } catch (const nlohmann::json::exception& e) {
    // A safety net behind the checks above; the library's text without its "[json.exception...]".
    const std::string what = e.what();
    throw Error(source + ": unexpected value (" + what.substr(std::min(what.find("] ") + 2, what.size()), 100) + ")");
  } catch (const std::bad_alloc&) {
    throw Error(source + ": out of memory while reading it");
  } catch (const std::length_error&) {
    throw Error(source + ": out of memory while reading it");
  }
}

}  // namespace

CocoFile CocoFile::load(const std::string& path) {
  CocoFile file;
  file.path_ = path;
  std::string text = read_text_file(path);
  // The tape holds about 3 bytes a byte of text: its allocation may fail on a huge file.
  file.tape_ = naming_source(path, [&] { return JsonTape::parse(text); });
  if (!file.tape_) file.document_ = parse_json_data(text, path);
  return file;
}

CocoGroundTruth CocoGroundTruth::read(const std::string& path) {
  return CocoFile::load(path).read([&](const auto& doc) {
    return naming_source(path, [&] { return from_json_unchecked(doc, path); });
  });
}

CocoGroundTruth CocoGroundTruth::from_json(const nlohmann::json& doc, const std::string& source) {
  return naming_source(source, [&] { return from_json_unchecked(doc, source); });
}

template <class J>
CocoGroundTruth CocoGroundTruth::from_json_unchecked(const J& doc, const std::string& source) {
  CocoGroundTruth gt;
  gt.source_ = source;
  if (!doc.is_object()) throw Error(source + ": expected a COCO object with images, annotations and categories");
  for (const char* key : {"images", "annotations", "categories"})
    if (!doc.contains(key) || !doc[key].is_array()) throw Error(source + ": missing the \"" + key + "\" list");
  size_t i = 0;
  for (const auto& r : doc["images"]) {
    const std::string where = source + ": images[" + std::to_string(i++) + "]";
    if (!r.is_object()) throw Error(where + ": expected an object");
    CocoImage image;
    image.id = require_int(r, "id", where);
    read_image_size(r, where, image);
    if (r.contains("file_name") && r["file_name"].is_string()) image.file_name = r["file_name"].template get<std::string>();
    gt.images_[image.id] = image;
  }
  std::set<int64_t> category_ids;
  i = 0;
  for (const auto& r : doc["categories"]) {
    const std::string where = source + ": categories[" + std::to_string(i++) + "]";
    if (!r.is_object()) throw Error(where + ": expected an object");
    // pycocotools does not look at names: one that is no string is shown as its value.
    const std::string name = !r.contains("name")       ? ""
                             : r["name"].is_string() ? r["name"].template get<std::string>()
                                                     : preview(r["name"]);
    CocoCategory category{require_int(r, "id", where), name};
    if (!category_ids.insert(category.id).second) continue;
    gt.categories_.push_back(category);
  }
  std::sort(gt.categories_.begin(), gt.categories_.end(), [](auto& a, auto& b) { return a.id < b.id; });
  i = 0;
  for (const auto& r : doc["annotations"]) {
    CocoObject a;
    std::string& where = a.where;  // made in place: the readers build one per object
    where = source + ": annotations[" + std::to_string(i++) + "]";
    if (!r.is_object()) throw Error(where + ": expected an object");
    a.id = require_int(r, "id", where);
    where += " (id " + std::to_string(a.id) + ")";
    a.image_id = require_int(r, "image_id", where);
    a.category_id = require_int(r, "category_id", where);
    a.area = require_number(r, "area", where);
    if (r.contains("iscrowd")) {
      const auto& c = r["iscrowd"];
      if (!(c.is_number_integer() || c.is_boolean())) throw Error(where + ": \"iscrowd\" must be 0 or 1");
      a.iscrowd = c.is_boolean() ? c.template get<bool>() : c.template get<int64_t>() != 0;
    }
    a.bbox = read_bbox(r, where);
    if (r.contains("segmentation") && !r["segmentation"].is_null())
      a.segmentation = read_segmentation(r["segmentation"], where);
    gt.annotations_.push_back(std::move(a));
  }
  return gt;
}

std::string CocoGroundTruth::category_name(int64_t id) const {
  for (const auto& c : categories_)
    if (c.id == id) return c.name;
  return std::to_string(id);
}

namespace {

// What every detection record is read by: its file, the ground truth it must refer to, and
// whether areas are the boxes' (pycocotools' loadRes decides from the first record).
struct DetectionRules {
  const std::string& source;
  const CocoGroundTruth& gt;
  std::set<int64_t> category_ids;
  bool box_results;
};

// Detection i, checked, with id i + 1 and its area (and box, for mask results) as loadRes derives them.
template <class J>
CocoObject read_detection(const J& r, size_t i, const DetectionRules& rules) {
  CocoObject d;
  std::string& where = d.where;  // made in place: one per object
  where = rules.source + ": detection " + std::to_string(i);
  if (!r.is_object()) throw Error(where + ": expected an object");
  d.id = static_cast<int64_t>(i) + 1;
  d.image_id = require_int(r, "image_id", where);
  d.category_id = require_int(r, "category_id", where);
  d.score = require_number(r, "score", where);
  if (!rules.gt.images().count(d.image_id))
    throw Error(where + ": image_id " + std::to_string(d.image_id) + " is not in the ground truth " +
                rules.gt.source());
  if (!rules.category_ids.count(d.category_id))
    throw Error(where + ": category_id " + std::to_string(d.category_id) + " is not in the ground truth " +
                rules.gt.source());
  d.bbox = read_bbox(r, where);
  if (r.contains("segmentation") && !r["segmentation"].is_null())
    d.segmentation = read_segmentation(r["segmentation"], where);
  if (rules.box_results) {
    if (!d.bbox) throw Error(where + ": missing \"bbox\" (the first detection has one)");
    d.area = (*d.bbox)[2] * (*d.bbox)[3];
  } else {
    if (d.segmentation.kind == Segmentation::Kind::None)
      throw Error(where + ": has neither \"bbox\" nor \"segmentation\"");
    const Rle mask = object_mask(d, rules.gt);
    d.area = static_cast<double>(mask.area());
    if (!d.bbox) d.bbox = mask.bbox();
  }
  return d;
}

// An array element as a handle a thread can read it by: the JsonView itself, or a pointer into
// nlohmann's document; element(handle) gives the value back.
inline JsonView handle(const JsonView& v) { return v; }
inline const nlohmann::json* handle(const nlohmann::json& v) { return &v; }
inline const JsonView& element(const JsonView& v) { return v; }
inline const nlohmann::json& element(const nlohmann::json* v) { return *v; }

// The records, a block at a time on up to `threads` threads; a bad one's error is the first in
// file order, and memory grows with the records read (a huge list that is bad early costs little).
template <class J>
std::vector<CocoObject> read_detection_records(const J& doc, const std::string& source, const CocoGroundTruth& gt,
                                               int threads) {
  if (!doc.is_array()) throw Error(source + ": expected a list of detections (COCO results format)");
  DetectionRules rules{source, gt, {},
                       !doc.empty() && doc[0].is_object() && doc[0].contains("bbox") &&
                           !(doc[0]["bbox"].is_array() && doc[0]["bbox"].empty())};
  for (const auto& c : gt.categories()) rules.category_ids.insert(c.id);
  constexpr size_t kBlock = 65536;  // each block waits for its slowest thread: few of them
  std::vector<CocoObject> dts;
  dts.reserve(doc.size());
  std::vector<decltype(handle(*doc.begin()))> block;
  for (auto it = doc.begin(); it != doc.end();) {
    block.clear();
    for (; it != doc.end() && block.size() < kBlock; ++it) block.push_back(handle(*it));
    const size_t begin = dts.size();
    dts.resize(begin + block.size());
    FirstError first;
    parallel_for(block.size(), threads, [&](size_t j) {
      first.run(j, [&] { dts[begin + j] = read_detection(element(block[j]), begin + j, rules); });
    });
    first.rethrow();
  }
  return dts;
}

}  // namespace

std::vector<CocoObject> read_detections(const std::string& path, const CocoGroundTruth& gt) {
  return read_detections(CocoFile::load(path), gt);
}

std::vector<CocoObject> read_detections(const CocoFile& file, const CocoGroundTruth& gt, int threads) {
  threads = all_cores_if_zero(threads);
  return file.read([&](const auto& doc) {
    return naming_source(file.path(), [&] { return read_detection_records(doc, file.path(), gt, threads); });
  });
}

std::vector<CocoObject> detections_from_json(const nlohmann::json& doc, const std::string& source,
                                             const CocoGroundTruth& gt) {
  return naming_source(source, [&] { return read_detection_records(doc, source, gt, 1); });
}

namespace {

// The image a polygon is rasterised in: the ground truth's height and width of the object's image.
std::array<int64_t, 2> polygon_canvas(const CocoObject& object, const CocoGroundTruth& gt) {
  const auto image = gt.images().find(object.image_id);
  if (image == gt.images().end() || image->second.height < 0 || image->second.width < 0)
    throw Error("polygons need the image's height and width, which " + gt.source() + " does not give for image " +
                std::to_string(object.image_id));
  return {image->second.height, image->second.width};
}

// fn() with the object's mask errors named by the object; an object without a mask is an error.
template <typename Fn>
auto with_mask_errors(const CocoObject& object, Fn fn) {
  if (object.segmentation.kind == Segmentation::Kind::None)
    throw Error(object.where + ": has no \"segmentation\" (segm evaluation needs masks)");
  try {
    return fn(object.segmentation);
  } catch (const Error& e) {
    throw Error(object.where + ": " + e.what());
  }
}

}  // namespace

Rle object_mask(const CocoObject& object, const CocoGroundTruth& gt) {
  return with_mask_errors(object, [&](const Segmentation& segm) {
    if (segm.kind == Segmentation::Kind::CompressedRle) return rle_from_string(segm.counts, segm.height, segm.width);
    if (segm.kind == Segmentation::Kind::UncompressedRle) return rle_from_counts(segm.runs, segm.height, segm.width);
    const auto [height, width] = polygon_canvas(object, gt);
    if (segm.polygons.size() == 1)  // most objects: no merge, no copy
      return rle_from_polygon(segm.polygons[0], height, width);
    std::vector<Rle> parts;
    for (const auto& poly : segm.polygons) parts.push_back(rle_from_polygon(poly, height, width));
    return rle_merge(parts);
  });
}

void check_object_mask(const CocoObject& object, const CocoGroundTruth& gt) {
  with_mask_errors(object, [&](const Segmentation& segm) {
    if (segm.kind == Segmentation::Kind::CompressedRle) return check_rle_string(segm.counts, segm.height, segm.width);
    if (segm.kind == Segmentation::Kind::UncompressedRle) return check_rle_counts(segm.runs, segm.height, segm.width);
    const auto [height, width] = polygon_canvas(object, gt);
    check_mask_size(height, width);  // rle_from_polygon's checks, in its order
    for (const auto& poly : segm.polygons) check_polygon(poly);
  });
}

}  // namespace mrcnn::eval
