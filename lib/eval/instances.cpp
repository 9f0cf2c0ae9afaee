#include "eval/instances.h"

#include <cmath>

namespace mrcnn::eval {

Json to_coco_results(const ImageDetections& detections, int64_t image_id, const std::string& file_name) {
  Json records = Json::array();
  for (const auto& inst : detections.instances) {
    Json r;
    r["image_id"] = image_id;
    if (!file_name.empty()) r["file_name"] = file_name;
    r["category_id"] = inst.label;
    const auto& b = inst.box;
    // Rounded to 0.01 px: enough for any metric, and keeps the files small.
    const auto round2 = [](double v) { return std::round(v * 100.0) / 100.0; };
    r["bbox"] = {round2(b[0]), round2(b[1]), round2(b[2] - b[0]), round2(b[3] - b[1])};
    r["score"] = std::round(static_cast<double>(inst.score) * 1e5) / 1e5;
    if (detections.has_masks)
      r["segmentation"] = {{"size", {detections.height, detections.width}}, {"counts", rle_to_string(inst.mask)}};
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace mrcnn::eval
