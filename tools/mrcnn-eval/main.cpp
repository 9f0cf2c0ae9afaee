// mrcnn-eval: COCO mAP of detections against ground truth, the numbers pycocotools prints.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "eval/coco_eval.h"
#include "infer/infer_process.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

// Blocks up to 32 MiB (glibc's most) come from the heap and stay there when freed, instead of
// being mapped for each: what the ground truth's text and tape free, the detections' reuse, where
// the kernel would zero new pages for them (page faults 31.8k -> 18.3k on the 5000-image bench
// case, a tenth of the run). Memory is given back at exit; the peak stays at a fifth of pycocotools'.
static void reuse_freed_memory() {
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// --per-class: each category's AP, named.
static void print_per_class(const mrcnn::eval::EvalResult& result, const mrcnn::eval::CocoGroundTruth& gt,
                            int64_t max_dets) {
  std::cout << "Per-class AP (IoU .50:.95, all areas, " << max_dets << " detections):\n";
  for (size_t k = 0; k < result.category_ids.size(); ++k) {
    const double ap = result.category_ap(k);
    char line[64];
    std::snprintf(line, sizeof line, "%7.3f", ap);
    std::cout << "  " << line << "  " << gt.category_name(result.category_ids[k]) << " (id "
              << result.category_ids[k] << ")" << (ap < 0 ? "  [no ground truth]" : "") << "\n";
  }
}

int main(int argc, char** argv) {
  reuse_freed_memory();
  mrcnn::Tool tool("mrcnn-eval",
                   "Score detections against COCO ground truth: bbox and/or segm AP and AR with pycocotools' "
                   "parameters and rules (IoU .50:.05:.95, 101 recall points, maxDets 1/10/100, area ranges, crowd "
                   "regions), printed in pycocotools' layout and identical to its numbers.",
                   "  mrcnn-eval --gt instances_val2017.json --dt results.json\n"
                   "  mrcnn-eval --gt gt.json --dt dt.json --iou-type segm --per-class --json metrics.json\n"
                   "  mrcnn-eval --config run.json --weights runs/peds/model_final.safetensors\n"
                   "  mrcnn-eval --gt gt.json --dt dt.json --max-dets 300    (crowded images: score 300 per image)\n");
  std::string gt_path, dt_path, iou_type = "both", json_out, config_path, weights, device;
  bool per_class = false;
  int threads = 0;
  int64_t max_dets = mrcnn::eval::kDefaultMaxDetections;
  CLI::App& app = tool.app();
  auto* gt_opt = app.add_option("--gt", gt_path, "Ground truth, COCO JSON");
  auto* dt_opt = app.add_option("--dt", dt_path, "Detections, COCO results JSON (a list of records)");
  auto* config_opt = app.add_option("-c,--config", config_path, "Evaluate a model on this configuration's val set");
  app.add_option("-w,--weights", weights, "The model's weights (with --config)")->needs(config_opt);
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N (with --config; default: eval.device)")
      ->needs(config_opt);
  dt_opt->needs(gt_opt);
  config_opt->excludes(gt_opt)->excludes(dt_opt);
  auto* iou_opt = app.add_option("--iou-type", iou_type, "bbox, segm or both (with --config: default eval.iou_types)")
      ->check(CLI::IsMember({"bbox", "segm", "both"}))
      ->capture_default_str();
  app.add_option("--json", json_out, "Also write the numbers here: {\"bbox\": {\"AP\": ...}, \"segm\": {...}}");
  app.add_option("--max-dets", max_dets,
                 "Detections scored per image (pycocotools' maxDets[2]); more than 100 for images with more objects")
      ->check(CLI::Range(int64_t{1}, mrcnn::eval::kMaxMaxDetections))
      ->capture_default_str();
  app.add_flag("--per-class", per_class, "Also print the AP of every category");
  app.add_option("--threads", threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0, 4096));

  return tool.run(argc, argv, [&] {
    if (config_path.empty() && (gt_path.empty() || dt_path.empty()))
      throw mrcnn::Error("give --gt and --dt, or --config and --weights");
    if (!config_path.empty() && weights.empty()) throw mrcnn::Error("--config needs --weights");
    if (!json_out.empty()) mrcnn::check_output_file(json_out);
    std::optional<mrcnn::infer::ValSetResults> model_results;
    std::string gt_name = gt_path, dt_name = dt_path;  // as messages name them
    if (!config_path.empty()) {
      model_results = mrcnn::infer::infer_val_set(config_path, weights, device);
      gt_path = model_results->ground_truth;
      dt_path = model_results->detections;
      gt_name = model_results->ground_truth_name;
      dt_name = model_results->detections_name;
      if (iou_opt->count() == 0) iou_type = model_results->iou_type;
    }
    const auto started = std::chrono::steady_clock::now();
    const auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    // The detections file is loaded (read and parsed) on a second thread while the ground truth is
    // read; its errors, if any, come after the ground truth's, as they would one after the other.
    auto dt_file = std::async(threads == 1 ? std::launch::deferred : std::launch::async,
                              [&] { return mrcnn::eval::CocoFile::load(dt_path); });
    // With --config, errors name the user's inputs: the temporary files are gone when the line is read.
    const auto named = [&](const auto& read) {
      try {
        return read();
      } catch (const mrcnn::Error& e) {
        if (!model_results) throw;
        throw mrcnn::Error(mrcnn::infer::with_user_names(e.what(), *model_results));
      }
    };
    const auto gt = named([&] { return mrcnn::eval::CocoGroundTruth::read(gt_path); });
    mrcnn::log::debug("ground truth read at {} s", seconds());
    const auto detections = named([&] { return mrcnn::eval::read_detections(dt_file.get(), gt, threads); });
    mrcnn::log::debug("detections read at {} s", seconds());
    model_results.reset();  // its files, read, are removed
    mrcnn::log::info("{}: {} images, {} annotations, {} categories; {}: {} detections", gt_name, gt.images().size(),
                     gt.annotations().size(), gt.categories().size(), dt_name, detections.size());
    const auto types = mrcnn::eval::iou_types_to_score(iou_type, detections, dt_name);
    if (iou_type == "both" && types.size() == 1)
      mrcnn::log::info("{}: box results (no detection has a \"segmentation\"): scored by bbox only", dt_name);
    mrcnn::Json metrics = mrcnn::Json::object();
    for (const auto type : types) {
      const auto result = mrcnn::eval::evaluate(gt, detections, type, threads, max_dets);
      mrcnn::log::debug("{} evaluated at {} s", mrcnn::eval::iou_type_name(type), seconds());
      std::cout << "IoU type: " << mrcnn::eval::iou_type_name(type) << "\n" << mrcnn::eval::summary_text(result);
      if (per_class) print_per_class(result, gt, max_dets);
      metrics[mrcnn::eval::iou_type_name(type)] = mrcnn::eval::stats_json(result);
    }
    if (!json_out.empty()) mrcnn::write_json_file(json_out, metrics);
    return 0;
  });
}
