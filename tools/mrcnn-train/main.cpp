// mrcnn-train: train or fine-tune a Mask R-CNN from a configuration.
#include "config/config.h"
#include "core/device.h"
#include "core/pending.h"
#include "core/tool.h"

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-train",
                   "Train a Mask R-CNN, or fine-tune COCO-pretrained weights on your own classes, as the "
                   "configuration says. Writes checkpoints, metrics.jsonl and the resolved config to the output "
                   "folder.",
                   "  mrcnn-train --config run.json --output-dir runs/peds\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds --resume\n"
                   "  mrcnn-train --config run.json --output-dir runs/peds --init-weights maskrcnn_coco.pth\n");
  std::string config_path, output_dir, init_weights, device = "auto";
  bool resume = false;
  CLI::App& app = tool.app();
  app.add_option("-c,--config", config_path, "Experiment configuration (JSON)")->required();
  app.add_option("-o,--output-dir", output_dir, "Folder for checkpoints, logs and metrics")->required();
  app.add_flag("--resume", resume, "Continue from the last checkpoint in the output folder");
  app.add_option("--init-weights", init_weights, "Start from these weights (overrides train.init_weights)");
  app.add_option("--device", device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  return tool.run(argc, argv, [&] {
    mrcnn::config::load_resolved(config_path);
    mrcnn::resolve_device(mrcnn::parse_device_spec(device));
    throw mrcnn::not_available_yet("training", 5);
    return 0;
  });
}
