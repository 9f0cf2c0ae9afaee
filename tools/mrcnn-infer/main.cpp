// mrcnn-infer: run a trained Mask R-CNN on images and write COCO results (and overlays).
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "infer/detector_weights.h"
#include "infer/inference_request.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "train/checkpoint.h"

namespace {

// --save-model: the loaded weights with the configuration and the class names (--label-map, the
// model's own, else data.train.label_map) as one self-contained model, as mrcnn-train writes it.
void save_model(const std::string& path, const mrcnn::Json& config, const mrcnn::infer::InferenceRequest& request,
                const mrcnn::infer::DetectorOptions& options) {
  mrcnn::check_output_file(path);
  std::string label_map = request.label_map;
  if (label_map.empty() && !request.model_labels) label_map = config["data"]["train"]["label_map"].get<std::string>();
  const mrcnn::data::LabelMap labels = !label_map.empty()     ? mrcnn::data::LabelMap::read(label_map)
                                       : request.model_labels ? *request.model_labels
                                                              : mrcnn::data::LabelMap();
  mrcnn::train::write_model_file(path, mrcnn::infer::loaded_model_weights(config, options), 0, config, labels);
  mrcnn::log::info("wrote {}: the weights of {} with the configuration and {} class names", path, options.weights,
                   labels.names().size());
}

}  // namespace

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-infer",
                   "Detect and segment objects in images with a Mask R-CNN; writes COCO results JSON (boxes, "
                   "scores, compressed RLE masks as pycocotools encodes them) and, on request, the images with the "
                   "detections drawn. Without --coco, image ids are 1..N in sorted path order and every record "
                   "carries its file_name.",
                   "  mrcnn-infer --config run.json --weights runs/peds/model_final.safetensors \\\n"
                   "      --input photos/ --output results.json --overlay-dir overlays/ --label-map peds.pbtxt\n"
                   "  mrcnn-infer -c configs/maskrcnn_resnet50_fpn_coco.json -w maskrcnn_coco.pth \\\n"
                   "      --coco instances_val2017.json --image-root val2017/ -o dt.json --score-threshold 0\n"
                   "  mrcnn-infer --model runs/peds/model.safetensors -i photos/ -o results.json --overlay-dir ov/\n"
                   "  mrcnn-infer --model runs/fruit/model.safetensors -i drone/ -o dt.json --tile 800 --tile-full-image\n"
                   "  mrcnn-config import-tf pipeline.config --label-map label_map.pbtxt -o tf_model.json\n"
                   "  mrcnn-infer -c tf_model.json -w my_model/checkpoint/ckpt-25 --save-model tf_model.safetensors\n");
  mrcnn::infer::InferenceRequest request;
  std::string config_path, model_file, on_error = "fail";
  CLI::App& app = tool.app();
  auto* config_opt = app.add_option("-c,--config", config_path, "Experiment configuration (JSON)");
  auto* weights_opt = app.add_option("-w,--weights", request.weights,
                                     "Weights: .safetensors, torch.save .pth/.pt, or an mrcnn checkpoint");
  app.add_option("-m,--model", model_file,
                 "A self-contained model (mrcnn-train's RUN/model.safetensors: weights, config and class names), "
                 "instead of --config and --weights")
      ->excludes(config_opt)
      ->excludes(weights_opt);
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
  std::string save_model_file;
  app.add_option("--save-model", save_model_file,
                 "Also write the loaded weights with the configuration and class names as one self-contained model "
                 "(for --model): e.g. a TF OD API checkpoint given as --weights, converted once");
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
      ->check(CLI::Range(int64_t{1}, mrcnn::kLargestMaxImagePixels))
      ->capture_default_str();
  app.add_option("--on-error", on_error,
                 "An image that cannot be used (unreadable, not a regular file, undecodable, too large, too "
                 "elongated): fail (stop, exit 2) or skip (log it, count it)")
      ->check(CLI::IsMember({"fail", "skip"}))
      ->capture_default_str();
  app.add_flag("--allow-partial", request.allow_partial, "Load the weights that fit and report the rest");
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

  return tool.run(argc, argv, [&] {
    mrcnn::Json config;
    if (!model_file.empty()) {
      mrcnn::train::ModelFile model = mrcnn::train::read_model_file(model_file);
      config = std::move(model.config);
      request.model_labels = std::move(model.labels);
      request.weights = model.weights;
    } else {
      if (config_path.empty() || request.weights.empty()) throw mrcnn::Error("give --config and --weights, or --model");
      config = mrcnn::config::load_resolved(config_path);
    }
    request.skip_unreadable = on_error == "skip";
    const mrcnn::infer::DetectorOptions options = mrcnn::infer::detector_options(config, request);
    // Only --save-model, or a request checked whole before anything is written.
    const bool only_save = !save_model_file.empty() && request.output.empty() && request.inputs.empty() &&
                           request.coco.empty() && request.dataset.empty();
    if (!only_save) {
      if (request.output.empty()) throw mrcnn::Error("give --output, the COCO results JSON to write");
      mrcnn::infer::check_request(request);
    }
    if (!save_model_file.empty()) save_model(save_model_file, config, request, options);
    if (only_save) return 0;
    const mrcnn::infer::InferenceJob job = mrcnn::infer::inference_job(config, request);
    mrcnn::infer::Detector detector(config, options);
    mrcnn::log::info("{} images on {} ({}), score threshold {}", job.images.size(), detector.device_name(),
                     detector.precision(), job.score_threshold);
    const auto summary = mrcnn::infer::run_batch_inference(detector, job);
    mrcnn::write_json_file(request.output, summary.results);
    mrcnn::infer::log_summary(summary, job, detector, request.output);
    return 0;
  });
}
