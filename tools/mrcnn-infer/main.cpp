// mrcnn-infer: run a trained Mask R-CNN on images and write COCO results (and overlays).
#include <cmath>

#include "config/config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "io/atomic_file.h"
#include "io/image_file.h"
#include "io/json_file.h"
#include "infer/batch_inference.h"
#include "train/checkpoint.h"

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
                   "  mrcnn-infer --model runs/peds/model.safetensors -i photos/ -o results.json --overlay-dir ov/\n");
  std::string config_path, weights, model_file, dataset, output, overlay_dir, label_map, coco, image_root, device, precision,
      on_error = "fail";
  std::vector<std::string> inputs;
  float score_threshold = -1;
  int batch_size = 0, threads = 0;
  int64_t max_image_pixels = mrcnn::kDefaultMaxImagePixels;
  bool allow_partial = false;
  CLI::App& app = tool.app();
  auto* config_opt = app.add_option("-c,--config", config_path, "Experiment configuration (JSON)");
  auto* weights_opt =
      app.add_option("-w,--weights", weights, "Weights: .safetensors, torch.save .pth/.pt, or an mrcnn checkpoint");
  app.add_option("-m,--model", model_file,
                 "A self-contained model (mrcnn-train's RUN/model.safetensors: weights, config and class names), "
                 "instead of --config and --weights")
      ->excludes(config_opt)
      ->excludes(weights_opt);
  auto* input_opt = app.add_option("-i,--input", inputs, "Image files, folders or glob patterns");
  auto* coco_opt = app.add_option("--coco", coco, "Run over the images of this COCO annotation file (with their ids)");
  input_opt->excludes(coco_opt);
  app.add_option("--dataset", dataset,
                 "Run over the configuration's data.train or data.val set, in any format (coco, mask_png, tfrecord)")
      ->check(CLI::IsMember({"train", "val"}))
      ->excludes(input_opt)
      ->excludes(coco_opt);
  app.add_option("--image-root", image_root, "Folder the --coco file names are relative to")->needs(coco_opt);
  app.add_option("-o,--output", output, "COCO results JSON to write")->required();
  app.add_option("--score-threshold", score_threshold, "Drop detections below this (default: infer.score_threshold)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N (default: infer.device)");
  app.add_option("--batch-size", batch_size, "Images per forward pass (default: infer.batch_size)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 4096));
  app.add_option("--precision", precision,
                 "fp32, or the forward pass under bf16/fp16 autocast (fp16 on CUDA only; default: infer.precision)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--overlay-dir", overlay_dir, "Also draw the detections on each image into this folder (PNG)");
  app.add_option("--label-map", label_map, "label_map.pbtxt or JSON naming the classes (default: data.train.label_map)");
  app.add_option("--max-image-pixels", max_image_pixels,
                 "Refuse images with more pixels than this, before decoding them (a guard against decompression "
                 "bombs)")
      ->check(CLI::Range(int64_t{1}, mrcnn::kLargestMaxImagePixels))
      ->capture_default_str();
  app.add_option("--on-error", on_error,
                 "An image that cannot be used (unreadable, not a regular file, undecodable, too large, too "
                 "elongated): fail (stop, exit 2) or skip (log it, count it)")
      ->check(CLI::IsMember({"fail", "skip"}))
      ->capture_default_str();
  app.add_flag("--allow-partial", allow_partial, "Load the weights that fit and report the rest");

  return tool.run(argc, argv, [&] {
    mrcnn::Json config;
    mrcnn::data::LabelMap model_labels;
    if (!model_file.empty()) {
      mrcnn::train::ModelFile model = mrcnn::train::read_model_file(model_file);
      config = std::move(model.config);
      model_labels = std::move(model.labels);
      weights = model.weights;
    } else {
      if (config_path.empty() || weights.empty()) throw mrcnn::Error("give --config and --weights, or --model");
      config = mrcnn::config::load_resolved(config_path);
    }
    mrcnn::infer::DetectorOptions options;
    options.device = mrcnn::resolve_device(
        mrcnn::parse_device_spec(device.empty() ? config["infer"]["device"].get<std::string>() : device));
    if (inputs.empty() && coco.empty() && dataset.empty())
      throw mrcnn::Error("give the images with --input, --coco or --dataset");
    mrcnn::check_output_file(output);
    if (!overlay_dir.empty()) mrcnn::prepare_output_folder(overlay_dir);
    mrcnn::infer::InferenceJob job;
    if (!dataset.empty()) {
      const mrcnn::Json& set = config["data"][dataset];
      if (set["annotations"].get<std::string>().empty())
        throw mrcnn::Error("--dataset " + dataset + ": data." + dataset + ".annotations is empty in the configuration");
      job.images = mrcnn::infer::images_from_dataset(
          {set["format"].get<std::string>(), set["images"].get<std::string>(), set["annotations"].get<std::string>(),
           mrcnn::data::InvalidPolicy::Skip, config["model"]["num_classes"].get<int64_t>(), max_image_pixels});
    } else {
      job.images = coco.empty() ? mrcnn::infer::images_from_paths(inputs) : mrcnn::infer::images_from_coco(coco, image_root);
    }
    job.score_threshold = score_threshold >= 0 ? score_threshold : config["infer"]["score_threshold"].get<float>();
    // infer.batch_size is at most 4096 (the key's limit): it fits an int.
    job.batch_size = batch_size > 0 ? batch_size : static_cast<int>(config["infer"]["batch_size"].get<int64_t>());
    job.skip_unreadable = on_error == "skip";
    job.max_image_pixels = max_image_pixels;
    job.overlay_dir = overlay_dir;
    job.overlay_style.score_threshold = job.score_threshold;
    if (label_map.empty() && model_file.empty()) label_map = config["data"]["train"]["label_map"].get<std::string>();
    if (!label_map.empty()) job.labels = mrcnn::data::LabelMap::read(label_map);
    else job.labels = model_labels;

    options.weights = weights;
    options.allow_partial = allow_partial;
    options.threads = threads;
    options.precision = precision.empty() ? config["infer"]["precision"].get<std::string>() : precision;
    options.cudnn_benchmark = config["infer"]["cudnn_benchmark"].get<bool>();
    mrcnn::infer::Detector detector(config, options);
    mrcnn::log::info("{} images on {} ({}), score threshold {}", job.images.size(), detector.device_name(),
                     options.precision, job.score_threshold);

    const auto summary = mrcnn::infer::run_batch_inference(detector, job);
    mrcnn::write_json_file(output, summary.results);
    if (summary.skipped > 0)
      mrcnn::log::warn("skipped {} of {} images (--on-error skip; each is named above)", summary.skipped,
                       job.images.size());
    mrcnn::log::info("done: {} images, {} detections, {} skipped, {} s ({} img/s); wrote {}", summary.images,
                     summary.detections, summary.skipped, summary.seconds,
                     summary.seconds > 0 ? summary.images / summary.seconds : 0.0, output);
    if (detector.peak_gpu_memory_mb() > 0)
      mrcnn::log::info("peak GPU memory {} MiB", static_cast<int64_t>(std::lround(detector.peak_gpu_memory_mb())));
    return 0;
  });
}
