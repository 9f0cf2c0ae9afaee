// mrcnn-eval: COCO mAP of detections against ground truth, as pycocotools computes it.
#include "core/pending.h"
#include "core/tool.h"

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-eval",
                   "Score detections against COCO ground truth (bbox and segm mAP/AR, as pycocotools prints them).",
                   "  mrcnn-eval --gt instances_val.json --dt results.json --iou-type both --json metrics.json\n");
  std::string gt, dt, iou_type = "both", json_out;
  CLI::App& app = tool.app();
  app.add_option("--gt", gt, "Ground truth, COCO JSON")->required()->check(CLI::ExistingFile);
  app.add_option("--dt", dt, "Detections, COCO results JSON")->required()->check(CLI::ExistingFile);
  app.add_option("--iou-type", iou_type, "bbox, segm or both")
      ->check(CLI::IsMember({"bbox", "segm", "both"}))
      ->capture_default_str();
  app.add_option("--json", json_out, "Also write the metrics as JSON here");
  return tool.run(argc, argv, [&] {
    throw mrcnn::not_available_yet("COCO evaluation", 4);
    return 0;
  });
}
