// mrcnn-eval: COCO mAP of detections against ground truth, the numbers pycocotools prints.
#include <cstdio>
#include <iostream>

#include "config/config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "eval/coco_eval.h"
#include "io/json_file.h"
#include "model/batch_inference.h"

namespace {

// Runs the model over the configuration's validation images and returns its detections as COCO
// results, scored against that set's annotations.
mrcnn::Json model_detections(const std::string& config_path, const std::string& weights, const std::string& device,
                             std::string& gt_path) {
  const mrcnn::Json config = mrcnn::config::load_resolved(config_path);
  const mrcnn::Json& val = config["data"]["val"];
  if (val["format"] != "coco")
    throw mrcnn::Error(config_path + ": data.val.format is " + val["format"].dump() +
                       "; mrcnn-eval --config evaluates COCO validation sets (the other readers arrive with training)");
  gt_path = val["annotations"].get<std::string>();
  if (gt_path.empty()) throw mrcnn::Error(config_path + ": data.val.annotations is empty: nothing to evaluate against");
  mrcnn::model::DetectorOptions options;
  options.weights = weights;
  options.device = mrcnn::resolve_device(
      mrcnn::parse_device_spec(device.empty() ? config["eval"]["device"].get<std::string>() : device));
  mrcnn::model::InferenceJob job;
  job.images = mrcnn::model::images_from_coco(gt_path, val["images"].get<std::string>());
  job.score_threshold = 0;  // every detection the model makes (model.roi.score_thresh applies)
  job.batch_size = config["eval"]["batch_size"].get<int>();
  mrcnn::model::Detector detector(config, options);
  return mrcnn::model::run_batch_inference(detector, job).results;
}

}  // namespace

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-eval",
                   "Score detections against COCO ground truth: bbox and/or segm AP and AR with pycocotools' "
                   "parameters and rules (IoU .50:.05:.95, 101 recall points, maxDets 1/10/100, area ranges, crowd "
                   "regions), printed in pycocotools' layout and identical to its numbers.",
                   "  mrcnn-eval --gt instances_val2017.json --dt results.json\n"
                   "  mrcnn-eval --gt gt.json --dt dt.json --iou-type segm --per-class --json metrics.json\n"
                   "  mrcnn-eval --config run.json --weights runs/peds/model_final.safetensors\n");
  std::string gt_path, dt_path, iou_type = "both", json_out, config_path, weights, device;
  bool per_class = false;
  int threads = 0;
  CLI::App& app = tool.app();
  auto* gt_opt = app.add_option("--gt", gt_path, "Ground truth, COCO JSON");
  auto* dt_opt = app.add_option("--dt", dt_path, "Detections, COCO results JSON (a list of records)");
  auto* config_opt = app.add_option("-c,--config", config_path, "Evaluate a model on this configuration's val set");
  app.add_option("-w,--weights", weights, "The model's weights (with --config)")->needs(config_opt);
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N (with --config; default: eval.device)")
      ->needs(config_opt);
  dt_opt->needs(gt_opt);
  config_opt->excludes(gt_opt)->excludes(dt_opt);
  app.add_option("--iou-type", iou_type, "bbox, segm or both")
      ->check(CLI::IsMember({"bbox", "segm", "both"}))
      ->capture_default_str();
  app.add_option("--json", json_out, "Also write the numbers here: {\"bbox\": {\"AP\": ...}, \"segm\": {...}}");
  app.add_flag("--per-class", per_class, "Also print the AP of every category");
  app.add_option("--threads", threads, "Worker threads (default: all cores)")->check(CLI::NonNegativeNumber);

  return tool.run(argc, argv, [&] {
    if (config_path.empty() && (gt_path.empty() || dt_path.empty()))
      throw mrcnn::Error("give --gt and --dt, or --config and --weights");
    if (!config_path.empty() && weights.empty()) throw mrcnn::Error("--config needs --weights");
    const mrcnn::Json model_results =
        config_path.empty() ? mrcnn::Json() : model_detections(config_path, weights, device, gt_path);
    const auto gt = mrcnn::eval::CocoGroundTruth::read(gt_path);
    const auto detections = config_path.empty()
                                ? mrcnn::eval::read_detections(dt_path, gt)
                                : mrcnn::eval::detections_from_json(model_results, weights + " (model output)", gt);
    if (!config_path.empty()) dt_path = "the model";
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
