// Results of a model without masks (eval/instances, eval/coco_eval): records without a
// segmentation, which bbox evaluation scores and a segm evaluation refuses by name.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "eval/coco.h"
#include "eval/coco_eval.h"
#include "eval/instances.h"

using namespace mrcnn::eval;
using mrcnn::Json;

namespace {

// One 10 x 10 image with one 4 x 4 object at (2, 2) (an uncompressed RLE, column-major runs).
CocoGroundTruth ground_truth() {
  const nlohmann::json doc = {
      {"images", {{{"id", 1}, {"height", 10}, {"width", 10}}}},
      {"categories", {{{"id", 1}, {"name", "a"}}}},
      {"annotations",
       {{{"id", 7}, {"image_id", 1}, {"category_id", 1}, {"area", 16}, {"bbox", {2, 2, 4, 4}}, {"iscrowd", 0},
         {"segmentation", {{"size", {10, 10}}, {"counts", {22, 4, 6, 4, 6, 4, 6, 4, 44}}}}}}}};
  return CocoGroundTruth::from_json(doc, "gt.json");
}

// One detection on the object, with or without its mask.
ImageDetections detections(bool has_masks) {
  Instance instance;
  instance.box = {2, 2, 6, 6};
  instance.score = 0.9f;
  instance.label = 1;
  if (has_masks) {
    std::vector<uint8_t> mask(100, 0);
    for (int y = 2; y < 6; ++y)
      for (int x = 2; x < 6; ++x) mask[y * 10 + x] = 1;
    instance.mask = encode_rle(mask.data(), 10, 10);
  }
  return {10, 10, {instance}, has_masks};
}

std::vector<CocoObject> read_back(const ImageDetections& found, const CocoGroundTruth& gt) {
  return detections_from_json(nlohmann::json(to_coco_results(found, 1)), "dt.json", gt);
}

}  // namespace

TEST_CASE("results without masks have no segmentation; with masks they have one", "[eval][instances]") {
  const Json boxes = to_coco_results(detections(false), 1);
  REQUIRE(boxes.size() == 1);
  CHECK_FALSE(boxes[0].contains("segmentation"));
  CHECK(boxes[0]["bbox"] == Json({2.0, 2.0, 4.0, 4.0}));
  const Json masks = to_coco_results(detections(true), 1);
  REQUIRE(masks.size() == 1);
  CHECK(masks[0]["segmentation"]["size"] == Json({10, 10}));
}

TEST_CASE("box results are scored by bbox; segm of them is one error naming the file", "[eval][instances]") {
  const CocoGroundTruth gt = ground_truth();
  const std::vector<CocoObject> boxes = read_back(detections(false), gt);
  CHECK(iou_types_to_score("both", boxes, "dt.json") == std::vector<IouType>{IouType::Bbox});
  CHECK(iou_types_to_score("bbox", boxes, "dt.json") == std::vector<IouType>{IouType::Bbox});
  CHECK_THROWS_WITH(iou_types_to_score("segm", boxes, "dt.json"),
                    Catch::StartsWith("dt.json: --iou-type segm: no detection has a \"segmentation\""));
  CHECK(evaluate(gt, boxes, IouType::Bbox).stats[0] == Approx(1.0));

  const std::vector<CocoObject> masks = read_back(detections(true), gt);
  CHECK(iou_types_to_score("both", masks, "dt.json") == std::vector<IouType>{IouType::Bbox, IouType::Segm});
  CHECK(iou_types_to_score("segm", masks, "dt.json") == std::vector<IouType>{IouType::Segm});
  CHECK(evaluate(gt, masks, IouType::Segm).stats[0] == Approx(1.0));
  // No detections at all: nothing says they are box results; both types score (no AP).
  CHECK(iou_types_to_score("both", {}, "dt.json").size() == 2);
}
