// Fuzz target: a COCO ground-truth file as mrcnn-eval reads it (through the JSON tape, and through
// nlohmann's DOM as the data readers do); every annotation's mask is made,
// and the annotations, turned into a results list (score 1), are evaluated against the file.
#include <nlohmann/json.hpp>

#include "coco_fuzzing.h"
#include "io/json_file.h"

namespace {

constexpr size_t kMaxDetections = 64;  // keeps one input's evaluation within milliseconds

// The annotations as COCO results: the fields a results file has, score 1.
nlohmann::json annotations_as_results(const nlohmann::json& doc) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& a : doc["annotations"]) {
    if (results.size() == kMaxDetections) break;
    nlohmann::json r = nlohmann::json::object();
    for (const char* key : {"image_id", "category_id", "bbox", "segmentation"})
      if (a.is_object() && a.contains(key)) r[key] = a[key];
    r["score"] = 1.0;
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mrcnn;
  fuzz::expect_clean_errors([&] {
    const std::string path = fuzz::scratch_file(data, size, ".json");
    // mrcnn-eval's own path: the JSON tape, then the same checks.
    fuzz::expect_clean_errors([&] { (void)eval::CocoGroundTruth::read(path); });
    const nlohmann::json doc = read_json_data_file(path);
    const auto gt = eval::CocoGroundTruth::from_json(doc, path);
    for (const auto& annotation : gt.annotations())
      fuzz::expect_clean_errors([&] { (void)eval::object_mask(annotation, gt).area(); });
    fuzz::evaluate_both(gt, eval::detections_from_json(annotations_as_results(doc), "results.json", gt));
  });
  return 0;
}
