// mrcnn-eval: COCO mAP of detections against ground truth, the numbers pycocotools prints.
#include <cstdio>
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "eval/coco_eval.h"
#include "io/json_file.h"

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-eval",
                   "Score detections against COCO ground truth: bbox and/or segm AP and AR with pycocotools' "
                   "parameters and rules (IoU .50:.05:.95, 101 recall points, maxDets 1/10/100, area ranges, crowd "
                   "regions), printed in pycocotools' layout and identical to its numbers.",
                   "  mrcnn-eval --gt instances_val2017.json --dt results.json\n"
                   "  mrcnn-eval --gt gt.json --dt dt.json --iou-type segm --per-class --json metrics.json\n");
  std::string gt_path, dt_path, iou_type = "both", json_out;
  bool per_class = false;
  int threads = 0;
  CLI::App& app = tool.app();
  app.add_option("--gt", gt_path, "Ground truth, COCO JSON")->required();
  app.add_option("--dt", dt_path, "Detections, COCO results JSON (a list of records)")->required();
  app.add_option("--iou-type", iou_type, "bbox, segm or both")
      ->check(CLI::IsMember({"bbox", "segm", "both"}))
      ->capture_default_str();
  app.add_option("--json", json_out, "Also write the numbers here: {\"bbox\": {\"AP\": ...}, \"segm\": {...}}");
  app.add_flag("--per-class", per_class, "Also print the AP of every category");
  app.add_option("--threads", threads, "Worker threads (default: all cores)")->check(CLI::NonNegativeNumber);

  return tool.run(argc, argv, [&] {
    const auto gt = mrcnn::eval::CocoGroundTruth::read(gt_path);
    const auto detections = mrcnn::eval::read_detections(dt_path, gt);
    mrcnn::log::info("{}: {} images, {} annotations, {} categories; {}: {} detections", gt_path, gt.images().size(),
                     gt.annotations().size(), gt.categories().size(), dt_path, detections.size());
    std::vector<mrcnn::eval::IouType> types;
    if (iou_type != "segm") types.push_back(mrcnn::eval::IouType::Bbox);
    if (iou_type != "bbox") types.push_back(mrcnn::eval::IouType::Segm);
    mrcnn::Json metrics = mrcnn::Json::object();
    for (const auto type : types) {
      const auto result = mrcnn::eval::evaluate(gt, detections, type, threads);
      std::cout << "IoU type: " << mrcnn::eval::iou_type_name(type) << "\n" << mrcnn::eval::summary_text(result);
      if (per_class) {
        std::cout << "Per-class AP (IoU .50:.95, all areas, 100 detections):\n";
        for (size_t k = 0; k < result.category_ids.size(); ++k) {
          const double ap = result.category_ap(k);
          char line[64];
          std::snprintf(line, sizeof line, "%7.3f", ap);
          std::cout << "  " << line << "  " << gt.category_name(result.category_ids[k]) << " (id "
                    << result.category_ids[k] << ")" << (ap < 0 ? "  [no ground truth]" : "") << "\n";
        }
      }
      metrics[mrcnn::eval::iou_type_name(type)] = mrcnn::eval::stats_json(result);
    }
    if (!json_out.empty()) mrcnn::write_json_file(json_out, metrics);
    return 0;
  });
}
