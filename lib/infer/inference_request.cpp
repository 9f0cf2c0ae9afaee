#include "infer/inference_request.h"

#include <cmath>

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"

namespace mrcnn::infer {

DetectorOptions detector_options(const Json& config, const InferenceRequest& request) {
  const Json& infer = config["infer"];
  DetectorOptions options;
  options.device = resolve_device(
      parse_device_spec(request.device.empty() ? infer["device"].get<std::string>() : request.device));
  options.weights = request.weights;
  options.allow_partial = request.allow_partial;
  options.threads = request.threads;
  options.precision = request.precision.empty() ? infer["precision"].get<std::string>() : request.precision;
  options.cudnn_benchmark = infer["cudnn_benchmark"].get<bool>();
  return options;
}

void check_request(const InferenceRequest& request) {
  if (request.inputs.empty() && request.coco.empty() && request.dataset.empty())
    throw Error("give the images with --input, --coco or --dataset");
  check_output_file(request.output);
  if (!request.overlay_dir.empty()) prepare_output_folder(request.overlay_dir);
}

namespace {

std::vector<InferenceImage> requested_images(const Json& config, const InferenceRequest& request) {
  if (!request.dataset.empty()) {
    const data::DatasetSpec spec = inference_dataset(config, request.dataset, request.max_image_pixels);
    if (spec.annotations.empty())
      throw Error("--dataset " + request.dataset + ": data." + request.dataset +
                  ".annotations is empty in the configuration");
    return images_from_dataset(spec);
  }
  if (!request.coco.empty()) return images_from_coco(request.coco, request.image_root);
  return images_from_paths(request.inputs);
}

// --label-map, else the names a self-contained model carries, else data.train.label_map.
data::LabelMap class_names(const Json& config, const InferenceRequest& request) {
  std::string path = request.label_map;
  if (path.empty() && request.model_labels) return *request.model_labels;
  if (path.empty()) path = config["data"]["train"]["label_map"].get<std::string>();
  return path.empty() ? data::LabelMap() : data::LabelMap::read(path);
}

// --overlay-bands, else infer.overlay_bands; each a channel the model takes.
std::vector<int> overlay_bands(const Json& config, const InferenceRequest& request) {
  if (request.overlay_bands.empty()) return config["infer"].value("overlay_bands", std::vector<int>{});
  const int64_t channels = config["model"].value("input_channels", int64_t{3});
  for (const int channel : request.overlay_bands)
    if (channel < 0 || channel >= channels)
      throw Error("--overlay-bands: names channel " + std::to_string(channel) + ", the model takes " +
                  std::to_string(channels) + " (channels 0-" + std::to_string(channels - 1) + ")");
  if (request.overlay_bands.size() == 2)
    throw Error("--overlay-bands: expected 3 channels (R, G, B) or 1 (gray), found 2");
  return request.overlay_bands;
}

}  // namespace

TileOptions tile_options(const Json& config, const InferenceRequest& request) {
  const Json& tile = config["infer"]["tile"];
  TileOptions options;
  options.size = request.tile_size >= 0 ? request.tile_size : tile["size"].get<int64_t>();
  options.overlap = request.tile_overlap >= 0 ? request.tile_overlap : tile["overlap"].get<double>();
  options.scale = request.tile_scale >= 0 ? request.tile_scale : tile["scale"].get<double>();
  options.full_image = request.tile_full_image || tile["full_image"].get<bool>();
  options.merge_threshold = tile["merge_threshold"].get<double>();
  options.check();
  return options;
}

InferenceJob inference_job(const Json& config, const InferenceRequest& request) {
  const Json& infer = config["infer"];
  InferenceJob job;
  job.images = requested_images(config, request);
  job.score_threshold = request.score_threshold >= 0 ? request.score_threshold : infer["score_threshold"].get<float>();
  // infer.batch_size is at most 4096 (the key's limit): it fits an int.
  job.batch_size = request.batch_size > 0 ? request.batch_size : static_cast<int>(infer["batch_size"].get<int64_t>());
  job.skip_unreadable = request.skip_unreadable;
  job.max_image_pixels = request.max_image_pixels;
  job.overlay_dir = request.overlay_dir;
  job.overlay_bands = overlay_bands(config, request);
  job.overlay_style.score_threshold = job.score_threshold;
  job.labels = class_names(config, request);
  job.tiling = tile_options(config, request);
  return job;
}

void log_summary(const InferenceSummary& summary, const InferenceJob& job, const Detector& detector,
                 const std::string& output) {
  if (summary.skipped > 0)
    log::warn("skipped {} of {} images (--on-error skip; each is named above)", summary.skipped, job.images.size());
  log::info("done: {} images, {} detections, {} skipped, {} s ({} img/s); wrote {}", summary.images,
            summary.detections, summary.skipped, summary.seconds,
            summary.seconds > 0 ? summary.images / summary.seconds : 0.0, output);
  if (detector.peak_gpu_memory_mb() > 0)
    log::info("peak GPU memory {} MiB", static_cast<int64_t>(std::lround(detector.peak_gpu_memory_mb())));
}

}  // namespace mrcnn::infer
