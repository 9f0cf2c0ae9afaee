#include "infer/infer_command.h"

#include <filesystem>

#include "config/config.h"
#include "config/model_file.h"
#include "core/error.h"
#include "core/log.h"
#include "infer/batch_inference.h"
#include "infer/detector_weights.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/tf_checkpoint.h"

namespace mrcnn::infer {

namespace {

// Where the images come from, and the results and overlays they go to.
void add_image_options(CLI::App& app, InferenceRequest& request) {
  auto* input_opt = app.add_option("-i,--input", request.inputs, "Image files, folders or glob patterns");
  auto* coco_opt =
      app.add_option("--coco", request.coco, "Run over the images of this COCO annotation file (with their ids)");
  input_opt->excludes(coco_opt);
  app.add_option("--dataset", request.dataset,
                 "Run over the configuration's data.train or data.val set, in any format (coco, mask_png, tfrecord, via, "
                 "labelme, yolo_seg)")
      ->check(CLI::IsMember({"train", "val"}))
      ->excludes(input_opt)
      ->excludes(coco_opt);
  app.add_option("--image-root", request.image_root, "Folder the --coco file names are relative to")->needs(coco_opt);
  app.add_option("-o,--output", request.output, "COCO results JSON to write (required unless only --save-model)");
}

// How the model runs: threshold, device, batch, threads, precision, overlays, class names.
void add_run_options(CLI::App& app, InferenceRequest& request) {
  app.add_option("--score-threshold", request.score_threshold,
                 "Drop detections below this (default: infer.score_threshold)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--device", request.device, "auto, cpu, cuda or cuda:N (default: infer.device)");
  app.add_option("--batch-size", request.batch_size, "Images per forward pass (default: infer.batch_size)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--threads", request.threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 4096));
  app.add_option("--precision", request.precision,
                 "auto (bf16 where the GPU or CPU computes bf16 natively, else fp32), fp32, or the forward pass "
                 "under bf16/fp16 autocast (fp16 on CUDA only; default: infer.precision)")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}));
  app.add_option("--overlay-dir", request.overlay_dir, "Also draw the detections on each image into this folder (PNG)");
  app.add_option("--overlay-bands", request.overlay_bands,
                 "The model's channels the overlays draw as R,G,B or as gray, e.g. 3,0,1 (false colour) or 3 "
                 "(default: infer.overlay_bands, else 0,1,2)")
      ->delimiter(',')
      ->expected(1, 3);
  app.add_option("--label-map", request.label_map,
                 "label_map.pbtxt or JSON naming the classes (default: data.train.label_map)");
  app.add_option("--max-image-pixels", request.max_image_pixels,
                 "Refuse images with more pixels than this, before decoding them (a guard against decompression "
                 "bombs)")
      ->check(CLI::Range(int64_t{1}, kLargestMaxImagePixels))
      ->capture_default_str();
}

// Tiled inference (infer.tile.*).
void add_tile_options(CLI::App& app, InferenceRequest& request) {
  app.add_option("--tile", request.tile_size,
                 "Tiled inference: cut each image into overlapping SIZE x SIZE tiles at native scale, run the "
                 "tiles, merge what the borders cut (default: infer.tile.size; 0: off)")
      ->check(CLI::Range(int64_t{0}, int64_t{65536}));
  app.add_option("--tile-overlap", request.tile_overlap,
                 "Share of a tile its neighbour covers too, 0 to 0.9 (default: infer.tile.overlap)")
      ->check(CLI::Range(0.0, 0.9));
  app.add_option("--tile-scale", request.tile_scale,
                 "Resize tiles by this factor before the model (default: infer.tile.scale, 1 = native pixels)")
      ->check(CLI::Range(0.0, 8.0));
  app.add_flag("--tile-full-image", request.tile_full_image,
               "With --tile: also run the whole image at the model's input size, for large objects");
}

// --model's configuration and class names, else --config's.
Json load_model_config(InferCommand& command) {
  if (!command.model_file.empty()) {
    config::ModelFile model = config::read_model_file(command.model_file);
    command.request.model_labels = std::move(model.labels);
    command.request.weights = model.weights;
    return std::move(model.config);
  }
  if (command.config_path.empty() || command.request.weights.empty())
    throw Error("give --config and --weights, or --model");
  return config::load_resolved(command.config_path);
}

// --save-model's file, checked before anything is built: never a file the run reads or writes
// besides (--output, --weights, --model), an existing one is kept unless --force (as import-tf
// keeps its outputs), and its folder must take a new file.
void check_save_target(const InferCommand& command) {
  const std::string& path = command.save_model;
  const std::pair<const char*, const std::string*> others[] = {{"--output", &command.request.output},
                                                                {"--model", &command.model_file},
                                                                {"--weights", &command.request.weights}};
  for (const auto& [flag, other] : others)
    if (!other->empty() && same_file(path, *other))
      throw Error("--save-model " + path + ": the same file as " + flag + " " + *other +
                  " (give the self-contained model its own file)");
  for (const std::string& file : tf::checkpoint_files(command.request.weights))
    if (same_file(path, file))
      throw Error("--save-model " + path + ": a file of the TF checkpoint --weights " + command.request.weights +
                  " (give the self-contained model its own file)");
  std::error_code ec;
  if (!command.force && std::filesystem::exists(path, ec)) throw Error(path + ": already exists (use --force to overwrite)");
  check_output_file(path);
}

// --save-model: the loaded weights with the configuration and the class names (--label-map, the
// model's own, else data.train.label_map) as one self-contained model, as mrcnn-train writes it.
void save_model(const std::string& path, const Json& config, const InferenceRequest& request,
                const DetectorOptions& options) {
  std::string label_map = request.label_map;
  if (label_map.empty() && !request.model_labels) label_map = config["data"]["train"]["label_map"].get<std::string>();
  const data::LabelMap labels = !label_map.empty()     ? data::LabelMap::read(label_map)
                                : request.model_labels ? *request.model_labels
                                                       : data::LabelMap();
  config::write_model_file(path, loaded_model_weights(config, options), 0, config, labels);
  log::info("wrote {}: the weights of {} with the configuration and {} class names", path, options.weights,
            labels.names().size());
}

// The images through the detector into the results file.
void run_inference(Detector& detector, const InferenceJob& job, const std::string& output) {
  log::info("{} images on {} ({}), score threshold {}", job.images.size(), detector.device_name(),
            detector.precision(), job.score_threshold);
  const auto summary = run_batch_inference(detector, job);
  write_json_file(output, summary.results);
  log_summary(summary, job, detector, output);
}

// Only --save-model: no images, no results file.
bool only_saves(const InferCommand& command) {
  const InferenceRequest& r = command.request;
  return !command.save_model.empty() && r.output.empty() && r.inputs.empty() && r.coco.empty() && r.dataset.empty();
}

}  // namespace

void add_infer_options(CLI::App& app, InferCommand& command) {
  auto* config_opt = app.add_option("-c,--config", command.config_path, "Experiment configuration (JSON)");
  auto* weights_opt = app.add_option("-w,--weights", command.request.weights,
                                     "Weights: .safetensors, torch.save .pth/.pt, or an mrcnn checkpoint");
  app.add_option("-m,--model", command.model_file,
                 "A self-contained model (mrcnn-train's RUN/model.safetensors: weights, config and class names), "
                 "instead of --config and --weights")
      ->excludes(config_opt)
      ->excludes(weights_opt);
  add_image_options(app, command.request);
  app.add_option("--save-model", command.save_model,
                 "Also write the loaded weights with the configuration and class names as one self-contained model "
                 "(for --model): e.g. a TF OD API checkpoint given as --weights, converted once");
  app.add_flag("--force", command.force, "Overwrite the --save-model file if it exists");
  add_run_options(app, command.request);
  app.add_option("--on-error", command.on_error,
                 "An image that cannot be used (unreadable, not a regular file, undecodable, too large, too "
                 "elongated): fail (stop, exit 2) or skip (log it, count it)")
      ->check(CLI::IsMember({"fail", "skip"}))
      ->capture_default_str();
  app.add_flag("--allow-partial", command.request.allow_partial, "Load the weights that fit and report the rest");
  add_tile_options(app, command.request);
}

int run_infer_command(InferCommand command) {
  const Json config = load_model_config(command);
  InferenceRequest& request = command.request;
  request.skip_unreadable = command.on_error == "skip";
  const DetectorOptions options = detector_options(config, request);
  if (!command.save_model.empty()) check_save_target(command);
  if (only_saves(command)) {
    save_model(command.save_model, config, request, options);
    return 0;
  }
  if (request.output.empty()) throw Error("give --output, the COCO results JSON to write");
  check_request(request);
  // Everything a bad input can fail (the images, overlay bands, tiles, precision on this device, the
  // weights) is built before --save-model writes: a refused run leaves no model file behind.
  const InferenceJob job = inference_job(config, request);
  Detector detector(config, options);
  check_job_fits_detector(detector, job);
  if (!command.save_model.empty()) save_model(command.save_model, config, request, options);
  run_inference(detector, job, request.output);
  return 0;
}

}  // namespace mrcnn::infer
