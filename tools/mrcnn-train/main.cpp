// mrcnn-train: train or fine-tune a Mask R-CNN from a configuration.
#include "config/config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "data/shapes.h"
#include "train/launch.h"
#include "train/settings.h"
#include "train/tfod_model.h"
#include "train/trainer.h"

namespace {

// --small: the small-object variant, with its own defaults for the --shapes-* options not given.
mrcnn::data::ShapesOptions small_shapes_options(const mrcnn::data::ShapesOptions& given, const CLI::App& app) {
  mrcnn::data::ShapesOptions options = mrcnn::data::ShapesOptions::small_objects_defaults();
  if (app.count("--shapes-train") > 0) options.train_images = given.train_images;
  if (app.count("--shapes-val") > 0) options.val_images = given.val_images;
  if (app.count("--shapes-size") > 0) options.image_size = given.image_size;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-train",
                   "Train a Mask R-CNN, or fine-tune COCO-pretrained weights on your own classes, as the "
                   "configuration says. Writes checkpoints, metrics.jsonl and the resolved config to the output "
                   "folder. --make-shapes writes the synthetic shapes data set the tiny preset trains on.",
                   "  mrcnn-train --make-shapes data/shapes\n"
                   "  mrcnn-train --make-shapes data/shapes_small --small   # many small objects, 2048 px\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds --resume\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds --time-limit 30   # a batch job's slot\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds --init-weights maskrcnn_coco.pth\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds --nproc 2   # data-parallel, this machine\n"
                   "  mrcnn-train --config run.json --output-dir runs/prof --profile-steps 11:15   # where time goes\n"
                   "  torchrun --nproc-per-node 8 --no-python mrcnn-train --config run.json --output-dir runs/peds\n");
  std::string config_path, output_dir, init_weights, device = "auto", shapes_dir, profile_steps;
  bool resume = false, tensorboard = false, small_shapes = false;
  double time_limit_minutes = 0;
  int nproc = 1;
  mrcnn::data::ShapesOptions shapes;
  CLI::App& app = tool.app();
  auto* config_opt = app.add_option("-c,--config", config_path, "Experiment configuration (JSON)");
  app.add_option("-o,--output-dir", output_dir, "Folder for checkpoints, logs and metrics")->needs(config_opt);
  app.add_flag("--resume", resume, "Continue from the last checkpoint in the output folder");
  app.add_flag("--tensorboard", tensorboard,
               "Also write TensorBoard event files to OUTPUT_DIR/tensorboard (or set train.tensorboard)");
  app.add_option("--init-weights", init_weights, "Start from these weights (overrides train.init_weights)");
  app.add_option("--time-limit", time_limit_minutes,
                 "Stop after this many minutes of training (validate, checkpoint, exit 0; --resume continues)")
      ->check(CLI::Range(0.001, 1e7));
  app.add_option("--nproc", nproc,
                 "Train data-parallel with this many processes on this machine (one GPU each on CUDA), as "
                 "torchrun --nproc-per-node N would start them; train.batch_size stays the global batch")
      ->check(CLI::Range(1, 1024));
  app.add_option("--profile-steps", profile_steps,
                 "Profile steps FIRST:LAST (CPU operators; CUDA kernels, copies and runtime calls on a GPU) into "
                 "OUTPUT_DIR/profile-trace.json, a Chrome trace; scripts/trace_summary.py summarises it");
  app.add_option("--device", device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  auto* shapes_opt = app.add_option("--make-shapes", shapes_dir, "Write the synthetic shapes data set here and exit");
  shapes_opt->excludes(config_opt);
  app.add_option("--shapes-train", shapes.train_images, "With --make-shapes: training images")->capture_default_str();
  app.add_option("--shapes-val", shapes.val_images, "With --make-shapes: validation images")->capture_default_str();
  app.add_option("--shapes-size", shapes.image_size, "With --make-shapes: image side in pixels")
      ->check(CLI::Range(32, 2048))
      ->capture_default_str();
  app.add_flag("--small", small_shapes,
               "With --make-shapes: the small-object variant, 50-200 shapes of 7-39 px per 2048x2048 image, some "
               "touching (defaults: 32 training and 8 validation images of 2048 px)")
      ->needs(shapes_opt);
  app.add_flag("--hidden-band", shapes.hidden_band,
               "With --make-shapes: 4-band RGBA images with a 4th class seen only in the 4th band "
               "(docs/data-formats.md#bands-and-bit-depth)")
      ->needs(shapes_opt);
  return tool.run(argc, argv, [&] {
    if (!shapes_dir.empty()) {
      if (small_shapes) shapes = small_shapes_options(shapes, app);
      mrcnn::data::write_shapes_dataset(shapes_dir, shapes);
      mrcnn::log::info("wrote {} training and {} validation images to {}", shapes.train_images, shapes.val_images,
                       shapes_dir);
      return 0;
    }
    if (config_path.empty() || output_dir.empty()) throw mrcnn::Error("give --config and --output-dir (or --make-shapes)");
    mrcnn::train::TrainOptions options;
    options.config_path = config_path;
    options.output_dir = output_dir;
    options.init_weights = init_weights;
    options.resume = resume;
    options.tensorboard = tensorboard;
    options.time_limit_seconds = time_limit_minutes * 60;
    options.profile_steps = profile_steps;
    const mrcnn::Json config = mrcnn::config::load_resolved(config_path);  // checked once, before any spawn
    if (config["model"]["arch"] == "tf_faster_rcnn" && device == "auto") {  // not "cuda" on a GPU machine
      device = "cpu";
      mrcnn::log::info("--device auto: cpu (the TF OD API family trains on the CPU so far)");
    }
    if (config["model"]["arch"] == "tf_faster_rcnn")  // what that family does not train with, before any spawn
      mrcnn::train::check_tfod_training(config, mrcnn::train::TrainSettings::from_config(config), nproc,
                                        mrcnn::parse_device_spec(device).kind == mrcnn::DeviceSpec::Kind::Cuda);
    if (nproc > 1) {
      if (std::getenv("WORLD_SIZE") != nullptr)
        throw mrcnn::Error("--nproc " + std::to_string(nproc) + " inside a launcher's process (WORLD_SIZE=" +
                           std::getenv("WORLD_SIZE") + " is set): use one of them");
      mrcnn::train::check_global_batch(config["train"]["batch_size"].get<int64_t>(), nproc);
      return mrcnn::train::run_local_processes(nproc, mrcnn::train::arguments_without_nproc(argc, argv));
    }
    options.device = mrcnn::resolve_device(mrcnn::parse_device_spec(device));
    mrcnn::train::run_training(config, options);
    return 0;
  });
}
