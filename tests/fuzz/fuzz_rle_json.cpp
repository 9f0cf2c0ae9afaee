// Fuzz target: a segmentation read from COCO JSON (an RLE object with "size" and string or list
// "counts", or polygons) as a ground-truth annotation, crowd and not, and as a detection, then
// rasterised and evaluated. The input is the segmentation value's JSON text.
#include <nlohmann/json.hpp>

#include "coco_fuzzing.h"

namespace {

nlohmann::json ground_truth(const nlohmann::json& segmentation) {
  nlohmann::json gt = nlohmann::json::parse(R"({
    "images": [{"id": 1, "height": 24, "width": 32, "file_name": "a.png"}],
    "categories": [{"id": 1, "name": "cat"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1, "bbox": [0, 0, 4, 4]},
                    {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 1, "bbox": [0, 0, 4, 4]}]})");
  for (auto& annotation : gt["annotations"]) annotation["segmentation"] = segmentation;
  return gt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mrcnn;
  // Not a JSON value: the COCO targets cover malformed JSON; this one is about masks.
  const nlohmann::json segmentation = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (segmentation.is_discarded()) return 0;
  fuzz::expect_clean_errors([&] {
    const auto gt = eval::CocoGroundTruth::from_json(ground_truth(segmentation), "gt.json");
    for (const auto& annotation : gt.annotations())
      fuzz::expect_clean_errors([&] { (void)eval::object_mask(annotation, gt).bbox(); });
    nlohmann::json results = nlohmann::json::array();
    results.push_back({{"image_id", 1}, {"category_id", 1}, {"score", 0.9}, {"segmentation", segmentation}});
    fuzz::evaluate_both(gt, eval::detections_from_json(results, "results.json", gt));
  });
  return 0;
}
