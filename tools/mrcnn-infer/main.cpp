// mrcnn-infer: run a trained Mask R-CNN on images and write COCO results (and overlays).
#include "config/config.h"
#include "core/device.h"
#include "core/pending.h"
#include "core/tool.h"

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-infer",
                   "Detect and segment objects in images with a trained Mask R-CNN; writes COCO results JSON "
                   "(boxes, scores, RLE masks) and, on request, images with the detections drawn.",
                   "  mrcnn-infer --config run.json --weights runs/peds/model_final.safetensors \\\n"
                   "      --images photos/ --output results.json --overlay-dir overlays/\n");
  std::string config_path, weights, output, overlay_dir, label_map, device = "auto";
  std::vector<std::string> images;
  CLI::App& app = tool.app();
  app.add_option("-c,--config", config_path, "Experiment configuration (JSON)")->required();
  app.add_option("-w,--weights", weights, "Weights: .safetensors, torchvision .pth, or an mrcnn checkpoint")
      ->required();
  app.add_option("-i,--images", images, "Image files or folders")->required();
  app.add_option("-o,--output", output, "COCO results JSON to write")->required();
  app.add_option("--overlay-dir", overlay_dir, "Also draw the detections on each image into this folder");
  app.add_option("--label-map", label_map, "label_map.pbtxt or JSON naming the classes");
  app.add_option("--device", device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  return tool.run(argc, argv, [&] {
    mrcnn::config::load_resolved(config_path);
    mrcnn::resolve_device(mrcnn::parse_device_spec(device));
    throw mrcnn::not_available_yet("inference", 3);
    return 0;
  });
}
