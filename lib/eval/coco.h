// COCO data for evaluation: ground truth (images, categories, annotations) and detection results,
// loaded and checked the way pycocotools' COCO and loadRes read them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/rle.h"
#include "io/json_file.h"
#include "io/json_tape.h"

namespace mrcnn::eval {

struct CocoImage {
  int64_t id = 0;
  int64_t height = -1, width = -1;  // -1 when the file does not say
  std::string file_name;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name;
};

// A segmentation as the file gives it, parsed and checked but not yet rasterised.
struct Segmentation {
  enum class Kind { None, Polygons, CompressedRle, UncompressedRle };
  Kind kind = Kind::None;
  std::vector<std::vector<double>> polygons;
  std::string counts;             // compressed RLE
  std::vector<uint32_t> runs;     // uncompressed RLE
  int64_t height = 0, width = 0;  // RLE size
};

// One ground-truth annotation or detection. Masks are made on demand (segm evaluation).
struct CocoObject {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  double area = 0;         // ground truth: the file's "area"; detections: as loadRes derives it
  bool iscrowd = false;    // ground truth only (pycocotools' "ignore" is iscrowd)
  double score = 0;        // detections only
  std::optional<Box> bbox;
  Segmentation segmentation;
  std::string where;       // "gt.json: annotations[12] (id 7)", for error messages
};

// A COCO JSON file read and parsed, not yet checked: on a flat tape, or as nlohmann's document
// where the tape leaves the file to it (which then gives the error of malformed JSON). Loading
// apart from reading lets mrcnn-eval load the detections on a second thread while the ground
// truth is read; the readers below take a path or a loaded file.
class CocoFile {
 public:
  static CocoFile load(const std::string& path);  // Error when unreadable or not JSON

  const std::string& path() const { return path_; }
  template <typename Fn>  // fn(the document: JsonView or nlohmann::json)
  auto read(Fn fn) const {
    if (tape_) return fn(tape_->root());
    return fn(document_);
  }

 private:
  std::string path_;
  std::optional<JsonTape> tape_;
  nlohmann::json document_;  // where there is no tape
};

// Reading checks every value a later step relies on (ids, image sizes, polygons, RLE sizes and
// counts) and throws Error naming the file, the record and the problem.
class CocoGroundTruth {
 public:
  static CocoGroundTruth read(const std::string& path);
  static CocoGroundTruth from_json(const nlohmann::json& doc, const std::string& source);

  const std::map<int64_t, CocoImage>& images() const { return images_; }
  const std::vector<CocoCategory>& categories() const { return categories_; }  // sorted by id
  const std::vector<CocoObject>& annotations() const { return annotations_; }  // file order
  std::string category_name(int64_t id) const;
  const std::string& source() const { return source_; }

 private:
  template <class J>  // nlohmann::json or JsonView (io/json_tape.h)
  static CocoGroundTruth from_json_unchecked(const J& doc, const std::string& source);

  std::string source_;
  std::map<int64_t, CocoImage> images_;
  std::vector<CocoCategory> categories_;
  std::vector<CocoObject> annotations_;
};

// Detections in COCO results format, with ids 1..N in file order and area/bbox derived as
// pycocotools' loadRes does (the first record decides: a non-empty "bbox" means area = w*h,
// else the mask area). Image and category ids must exist in the ground truth.
// threads: how many read the records (0: all cores); a bad record's error is the first in the file.
std::vector<CocoObject> read_detections(const std::string& path, const CocoGroundTruth& gt);
std::vector<CocoObject> read_detections(const CocoFile& file, const CocoGroundTruth& gt, int threads = 1);
std::vector<CocoObject> detections_from_json(const nlohmann::json& doc, const std::string& source,
                                             const CocoGroundTruth& gt);

// The object's mask in its image (polygons merged, uncompressed RLE compressed), as
// pycocotools' annToRLE. Throws Error naming the record when it has none or it is malformed.
Rle object_mask(const CocoObject& object, const CocoGroundTruth& gt);

// Throws the Error object_mask would throw, without making the mask (segm evaluation checks the
// objects whose masks no IoU needs).
void check_object_mask(const CocoObject& object, const CocoGroundTruth& gt);

}  // namespace mrcnn::eval
