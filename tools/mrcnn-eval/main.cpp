// mrcnn-eval: COCO mAP of detections against ground truth, the numbers pycocotools prints.
#include <cstdio>
#include <iostream>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <tuple>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "eval/coco_eval.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "core/subprocess.h"
#include "data/datasets.h"

namespace {

// Runs mrcnn-infer (a separate process, so that this tool never loads libtorch) over the
// configuration's validation images and returns the path of its results and of the annotations.
std::pair<std::string, std::string> run_model(const std::string& config_path, const std::string& weights,
                                              const std::string& device, const std::string& results_path) {
  const mrcnn::Json config = mrcnn::config::load_resolved(config_path);
  const mrcnn::Json& val = config["data"]["val"];
  std::string gt_path = val["annotations"].get<std::string>();
  if (gt_path.empty()) throw mrcnn::Error(config_path + ": data.val.annotations is empty: nothing to evaluate against");
  std::vector<std::string> images = {"--coco", gt_path, "--image-root", val["images"].get<std::string>()};
  if (val["format"] != "coco") {
    // Mask PNG folders and TFRecords: their ground truth as a COCO document, and mrcnn-infer over
    // the same set (the readers give both the same image ids).
    mrcnn::data::DatasetSpec spec = mrcnn::data::DatasetSpec::from_config(config, "data.val");
    spec.on_invalid = mrcnn::data::InvalidPolicy::Skip;  // as mrcnn-infer --dataset reads it
    mrcnn::data::ReadReport report;
    const auto samples = mrcnn::data::read_dataset(spec, report);
    mrcnn::log::info("{}", report.summary(gt_path));
    const std::string label_map = config["data"]["train"]["label_map"].get<std::string>();
    gt_path = results_path + ".gt.json";
    mrcnn::write_json_file(gt_path, mrcnn::data::coco_document(samples, spec.num_classes,
                                                               label_map.empty() ? mrcnn::data::LabelMap()
                                                                                 : mrcnn::data::LabelMap::read(label_map)));
    images = {"--dataset", "val"};
  }
  std::vector<std::string> argv = {mrcnn::sibling_executable("mrcnn-infer"), "--config", config_path, "--weights",
                                   weights};
  argv.insert(argv.end(), images.begin(), images.end());
  const std::vector<std::string> rest = {"--output", results_path, "--score-threshold", "0",
                                   "--batch-size", std::to_string(config["eval"]["batch_size"].get<int64_t>()),
                                   "--device", device.empty() ? config["eval"]["device"].get<std::string>() : device};
  argv.insert(argv.end(), rest.begin(), rest.end());
  const int rc = mrcnn::run_program(argv);
  if (rc != 0) throw mrcnn::Error("inference on the validation set failed (mrcnn-infer exited with " +
                                  std::to_string(rc) + ")");
  return {gt_path, results_path};
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
  app.add_option("--threads", threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0, 4096));

  return tool.run(argc, argv, [&] {
    if (config_path.empty() && (gt_path.empty() || dt_path.empty()))
      throw mrcnn::Error("give --gt and --dt, or --config and --weights");
    if (!config_path.empty() && weights.empty()) throw mrcnn::Error("--config needs --weights");
    if (!json_out.empty()) mrcnn::check_output_file(json_out);
    std::string model_results;
    if (!config_path.empty()) {
      model_results = (std::filesystem::temp_directory_path() / ("mrcnn-eval-" + std::to_string(::getpid()) + ".json")).string();
      std::tie(gt_path, dt_path) = run_model(config_path, weights, device, model_results);
    }
    const auto started = std::chrono::steady_clock::now();
    const auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    const auto gt = mrcnn::eval::CocoGroundTruth::read(gt_path);
    mrcnn::log::debug("ground truth read at {} s", seconds());
    const auto detections = mrcnn::eval::read_detections(dt_path, gt);
    mrcnn::log::debug("detections read at {} s", seconds());
    if (!model_results.empty()) {
      std::filesystem::remove(model_results);
      std::filesystem::remove(model_results + ".gt.json");
    }
    mrcnn::log::info("{}: {} images, {} annotations, {} categories; {}: {} detections", gt_path, gt.images().size(),
                     gt.annotations().size(), gt.categories().size(), dt_path, detections.size());
    std::vector<mrcnn::eval::IouType> types;
    if (iou_type != "segm") types.push_back(mrcnn::eval::IouType::Bbox);
    if (iou_type != "bbox") types.push_back(mrcnn::eval::IouType::Segm);
    mrcnn::Json metrics = mrcnn::Json::object();
    for (const auto type : types) {
      const auto result = mrcnn::eval::evaluate(gt, detections, type, threads);
      mrcnn::log::debug("{} evaluated at {} s", mrcnn::eval::iou_type_name(type), seconds());
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
