#include "infer/infer_process.h"

#include <utility>

#include "config/config.h"
#include "core/error.h"
#include "core/subprocess.h"
#include "io/json_file.h"

namespace mrcnn::infer {

namespace {

// The ground truth of a mask-PNG, TFRecord or label-tool val set as a COCO document in folder, written
// by `mrcnn-config export-coco` run as a child: the readers decode images, and mrcnn-eval links no
// image codecs (it starts in milliseconds). The child reads a copy of the configuration with the
// rule mrcnn-infer --dataset reads the set by (invalid records skipped) and the val set's own
// label map, as training's validation reads it: the same readers give the same image and class ids.
std::string write_val_ground_truth(const std::string& config_path, const TemporaryFolder& folder) {
  Json doc = config::load_config_file(config_path);
  doc["data"]["on_invalid"] = "skip";
  const std::string child_config = folder.file("val_config.json"), path = folder.file("ground_truth.json");
  write_json_file(child_config, doc);
  run_child_tool({sibling_executable("mrcnn-config"), "export-coco", child_config, "--set", "val", "--output", path,
                  "--force"});
  return path;
}

// The schema makes eval.iou_types a non-empty list of distinct values from bbox and segm.
std::string iou_type_option(const Json& iou_types) {
  return iou_types.size() == 1 ? iou_types[0].get<std::string>() : "both";
}

}  // namespace

ValSetResults infer_val_set(const std::string& config_path, const std::string& weights, const std::string& device) {
  const Json config = config::load_resolved(config_path);
  const Json& val = config["data"]["val"];
  ValSetResults out;
  out.ground_truth = val["annotations"].get<std::string>();
  if (out.ground_truth.empty())
    throw Error(config_path + ": data.val.annotations is empty: nothing to evaluate against");
  out.folder = std::make_unique<TemporaryFolder>("mrcnn-eval-");
  out.detections = out.folder->file("detections.json");
  out.detections_name = "the detections of " + weights + " on " + config_path + "'s data.val";
  out.ground_truth_name = out.ground_truth;
  out.iou_type = iou_type_option(config["eval"]["iou_types"]);
  std::vector<std::string> images = {"--coco", out.ground_truth, "--image-root", val["images"].get<std::string>()};
  if (val["format"] != "coco") {
    out.ground_truth_name = config_path + "'s data.val (" + out.ground_truth + ") as COCO";
    out.ground_truth = write_val_ground_truth(config_path, *out.folder);
    images = {"--dataset", "val"};
  }
  // The same pixel limit as the ground truth was read with (and large images to tile, infer.tile.*,
  // which the child reads from the same configuration).
  images.insert(images.end(), {"--max-image-pixels", std::to_string(config["data"]["max_image_pixels"].get<int64_t>())});
  std::vector<std::string> argv = {sibling_executable("mrcnn-infer"), "--config", config_path, "--weights", weights};
  argv.insert(argv.end(), images.begin(), images.end());
  const std::vector<std::string> rest = {
      "--output", out.detections, "--score-threshold", "0",
      "--batch-size", std::to_string(config["eval"]["batch_size"].get<int64_t>()),
      "--device", device.empty() ? config["eval"]["device"].get<std::string>() : device};
  argv.insert(argv.end(), rest.begin(), rest.end());
  run_child_tool(argv);
  return out;
}

std::string with_user_names(std::string message, const ValSetResults& results) {
  for (const auto& [path, name] : {std::pair{results.detections, results.detections_name},
                                   std::pair{results.ground_truth, results.ground_truth_name}}) {
    if (path.empty() || path == name) continue;
    for (size_t at = message.find(path); at != std::string::npos; at = message.find(path, at + name.size()))
      message.replace(at, path.size(), name);
  }
  return message;
}

}  // namespace mrcnn::infer
