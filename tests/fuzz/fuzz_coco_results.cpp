// Fuzz target: a COCO results file (detections) as mrcnn-eval reads and evaluates it against a
// fixed ground truth: two images, two categories, polygon, RLE and crowd annotations.
#include "coco_fuzzing.h"
#include "io/json_file.h"

namespace {

constexpr const char* kGroundTruth = R"({
  "images": [{"id": 1, "height": 24, "width": 32, "file_name": "a.png"},
             {"id": 2, "height": 16, "width": 16, "file_name": "b.png"}],
  "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 48, "bbox": [2, 2, 8, 6],
     "segmentation": [[2, 2, 10, 2, 10, 8, 2, 8]]},
    {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 1, "area": 100, "bbox": [12, 4, 10, 10],
     "segmentation": {"size": [24, 32], "counts": [292, 10, 14, 10, 14, 10, 14, 10, 14, 10, 14, 10, 14, 10, 14, 10, 14, 10, 14, 10, 250]}},
    {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 16, "bbox": [4, 4, 4, 4],
     "segmentation": {"size": [16, 16], "counts": "T24<00000l3"}}
  ]})";

const mrcnn::eval::CocoGroundTruth& ground_truth() {
  static const auto gt = mrcnn::eval::CocoGroundTruth::from_json(nlohmann::json::parse(kGroundTruth), "gt.json");
  return gt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mrcnn;
  fuzz::expect_clean_errors([&] {
    const auto detections = eval::read_detections(fuzz::scratch_file(data, size, ".json"), ground_truth());
    fuzz::evaluate_both(ground_truth(), detections);
  });
  return 0;
}
