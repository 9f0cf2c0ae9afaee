#include "eval/coco.h"

#include <algorithm>
#include <set>

#include "core/error.h"

namespace mrcnn::eval {
namespace {

// Large data files: nlohmann's plain json parses them faster than the order-keeping Json.
using DataJson = nlohmann::json;

int64_t require_int(const DataJson& record, const char* key, const std::string& where) {
  if (!record.contains(key)) throw Error(where + ": missing \"" + key + "\"");
  const DataJson& v = record[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  throw Error(where + ": \"" + key + "\" must be an integer, found " + v.dump());
}

double require_number(const DataJson& record, const char* key, const std::string& where) {
  if (!record.contains(key)) throw Error(where + ": missing \"" + key + "\"");
  if (!record[key].is_number()) throw Error(where + ": \"" + key + "\" must be a number, found " + record[key].dump());
  return record[key].get<double>();
}

std::optional<Box> read_bbox(const DataJson& record, const std::string& where) {
  if (!record.contains("bbox") || record["bbox"].is_null()) return std::nullopt;
  const DataJson& b = record["bbox"];
  if (b.is_array() && b.empty()) return std::nullopt;
  if (!b.is_array() || b.size() != 4 || !std::all_of(b.begin(), b.end(), [](const DataJson& x) { return x.is_number(); }))
    throw Error(where + ": \"bbox\" must be [x, y, width, height], found " + b.dump().substr(0, 80));
  return Box{b[0].get<double>(), b[1].get<double>(), b[2].get<double>(), b[3].get<double>()};
}

Segmentation read_segmentation(const DataJson& segm, const std::string& where) {
  Segmentation out;
  if (segm.is_array()) {
    if (segm.empty()) throw Error(where + ": \"segmentation\" is an empty polygon list");
    out.kind = Segmentation::Kind::Polygons;
    for (size_t i = 0; i < segm.size(); ++i) {
      const DataJson& poly = segm[i];
      if (!poly.is_array() || !std::all_of(poly.begin(), poly.end(), [](const DataJson& x) { return x.is_number(); }))
        throw Error(where + ": polygon " + std::to_string(i) + " must be a list of numbers");
      if (poly.size() < 6 || poly.size() % 2 != 0)
        throw Error(where + ": polygon " + std::to_string(i) + " has " + std::to_string(poly.size()) +
                    " coordinates; a polygon needs at least 3 points (x, y pairs)");
      std::vector<double> xy;
      xy.reserve(poly.size());
      for (const auto& v : poly) xy.push_back(v.get<double>());
      out.polygons.push_back(std::move(xy));
    }
    return out;
  }
  if (segm.is_object()) {
    if (!segm.contains("size") || !segm["size"].is_array() || segm["size"].size() != 2 ||
        !segm["size"][0].is_number_integer() || !segm["size"][1].is_number_integer())
      throw Error(where + ": RLE \"segmentation\" needs \"size\": [height, width]");
    out.height = segm["size"][0].get<int64_t>();
    out.width = segm["size"][1].get<int64_t>();
    if (!segm.contains("counts")) throw Error(where + ": RLE \"segmentation\" needs \"counts\"");
    const DataJson& counts = segm["counts"];
    if (counts.is_string()) {
      out.kind = Segmentation::Kind::CompressedRle;
      out.counts = counts.get<std::string>();
      return out;
    }
    if (counts.is_array()) {
      out.kind = Segmentation::Kind::UncompressedRle;
      for (const auto& c : counts) {
        if (!c.is_number_unsigned()) throw Error(where + ": RLE counts must be non-negative integers");
        out.runs.push_back(c.get<uint32_t>());
      }
      return out;
    }
    throw Error(where + ": RLE \"counts\" must be a string or a list of run lengths");
  }
  throw Error(where + ": \"segmentation\" must be polygons or an RLE object");
}

}  // namespace

CocoGroundTruth CocoGroundTruth::read(const std::string& path) { return from_json(read_json_data_file(path), path); }

CocoGroundTruth CocoGroundTruth::from_json(const DataJson& doc, const std::string& source) {
  CocoGroundTruth gt;
  gt.source_ = source;
  if (!doc.is_object()) throw Error(source + ": expected a COCO object with images, annotations and categories");
  for (const char* key : {"images", "annotations", "categories"})
    if (!doc.contains(key) || !doc[key].is_array()) throw Error(source + ": missing the \"" + key + "\" list");
  for (size_t i = 0; i < doc["images"].size(); ++i) {
    const DataJson& r = doc["images"][i];
    const std::string where = source + ": images[" + std::to_string(i) + "]";
    if (!r.is_object()) throw Error(where + ": expected an object");
    CocoImage image;
    image.id = require_int(r, "id", where);
    if (r.contains("height")) image.height = require_int(r, "height", where);
    if (r.contains("width")) image.width = require_int(r, "width", where);
    if (r.contains("file_name") && r["file_name"].is_string()) image.file_name = r["file_name"].get<std::string>();
    gt.images_[image.id] = image;
  }
  std::set<int64_t> category_ids;
  for (size_t i = 0; i < doc["categories"].size(); ++i) {
    const DataJson& r = doc["categories"][i];
    const std::string where = source + ": categories[" + std::to_string(i) + "]";
    if (!r.is_object()) throw Error(where + ": expected an object");
    CocoCategory category{require_int(r, "id", where), r.value("name", std::string())};
    if (!category_ids.insert(category.id).second) continue;
    gt.categories_.push_back(category);
  }
  std::sort(gt.categories_.begin(), gt.categories_.end(), [](auto& a, auto& b) { return a.id < b.id; });
  for (size_t i = 0; i < doc["annotations"].size(); ++i) {
    const DataJson& r = doc["annotations"][i];
    std::string where = source + ": annotations[" + std::to_string(i) + "]";
    if (!r.is_object()) throw Error(where + ": expected an object");
    CocoObject a;
    a.id = require_int(r, "id", where);
    where += " (id " + std::to_string(a.id) + ")";
    a.image_id = require_int(r, "image_id", where);
    a.category_id = require_int(r, "category_id", where);
    a.area = require_number(r, "area", where);
    if (r.contains("iscrowd")) {
      const DataJson& c = r["iscrowd"];
      if (!(c.is_number_integer() || c.is_boolean())) throw Error(where + ": \"iscrowd\" must be 0 or 1");
      a.iscrowd = c.is_boolean() ? c.get<bool>() : c.get<int64_t>() != 0;
    }
    a.bbox = read_bbox(r, where);
    if (r.contains("segmentation") && !r["segmentation"].is_null())
      a.segmentation = read_segmentation(r["segmentation"], where);
    a.where = where;
    gt.annotations_.push_back(std::move(a));
  }
  return gt;
}

std::string CocoGroundTruth::category_name(int64_t id) const {
  for (const auto& c : categories_)
    if (c.id == id) return c.name;
  return std::to_string(id);
}

std::vector<CocoObject> read_detections(const std::string& path, const CocoGroundTruth& gt) {
  return detections_from_json(read_json_data_file(path), path, gt);
}

std::vector<CocoObject> detections_from_json(const DataJson& doc, const std::string& source, const CocoGroundTruth& gt) {
  if (!doc.is_array()) throw Error(source + ": expected a list of detections (COCO results format)");
  std::set<int64_t> category_ids;
  for (const auto& c : gt.categories()) category_ids.insert(c.id);
  std::vector<CocoObject> dts;
  dts.reserve(doc.size());
  // pycocotools' loadRes decides from the first record how areas are derived.
  const bool box_results = !doc.empty() && doc[0].is_object() && doc[0].contains("bbox") &&
                           !(doc[0]["bbox"].is_array() && doc[0]["bbox"].empty());
  for (size_t i = 0; i < doc.size(); ++i) {
    const DataJson& r = doc[i];
    const std::string where = source + ": detection " + std::to_string(i);
    if (!r.is_object()) throw Error(where + ": expected an object");
    CocoObject d;
    d.id = static_cast<int64_t>(i) + 1;
    d.image_id = require_int(r, "image_id", where);
    d.category_id = require_int(r, "category_id", where);
    d.score = require_number(r, "score", where);
    if (!gt.images().count(d.image_id))
      throw Error(where + ": image_id " + std::to_string(d.image_id) + " is not in the ground truth " + gt.source());
    if (!category_ids.count(d.category_id))
      throw Error(where + ": category_id " + std::to_string(d.category_id) + " is not in the ground truth " +
                  gt.source());
    d.bbox = read_bbox(r, where);
    if (r.contains("segmentation") && !r["segmentation"].is_null())
      d.segmentation = read_segmentation(r["segmentation"], where);
    d.where = where;
    if (box_results) {
      if (!d.bbox) throw Error(where + ": missing \"bbox\" (the first detection has one)");
      d.area = (*d.bbox)[2] * (*d.bbox)[3];
    } else {
      if (d.segmentation.kind == Segmentation::Kind::None)
        throw Error(where + ": has neither \"bbox\" nor \"segmentation\"");
      const Rle mask = object_mask(d, gt);
      d.area = static_cast<double>(mask.area());
      if (!d.bbox) d.bbox = mask.bbox();
    }
    dts.push_back(std::move(d));
  }
  return dts;
}

Rle object_mask(const CocoObject& object, const CocoGroundTruth& gt) {
  const Segmentation& segm = object.segmentation;
  switch (segm.kind) {
    case Segmentation::Kind::None:
      throw Error(object.where + ": has no \"segmentation\" (segm evaluation needs masks)");
    case Segmentation::Kind::CompressedRle:
      try {
        return rle_from_string(segm.counts, segm.height, segm.width);
      } catch (const Error& e) {
        throw Error(object.where + ": " + e.what());
      }
    case Segmentation::Kind::UncompressedRle:
      return Rle{segm.height, segm.width, segm.runs};
    case Segmentation::Kind::Polygons:
      break;
  }
  const auto image = gt.images().find(object.image_id);
  if (image == gt.images().end() || image->second.height < 0 || image->second.width < 0)
    throw Error(object.where + ": polygons need the image's height and width, which " + gt.source() +
                " does not give for image " + std::to_string(object.image_id));
  std::vector<Rle> parts;
  for (const auto& poly : segm.polygons)
    parts.push_back(rle_from_polygon(poly, image->second.height, image->second.width));
  return rle_merge(parts);
}

}  // namespace mrcnn::eval
