// mrcnn-visualize: draw detections, ground truth, comparisons and training curves.
#include "core/pending.h"
#include "core/tool.h"

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-visualize",
                   "Draw what the toolkit produces: detections and ground truth on images (the TF OD API look), "
                   "side-by-side comparisons, contact sheets, training curves and precision-recall curves.",
                   "  mrcnn-visualize detections --images photos/ --results results.json -o overlays/\n");
  CLI::App& app = tool.app();
  app.require_subcommand(1, 1);
  std::vector<std::string> images;
  std::string results, output;
  auto* detections = app.add_subcommand("detections", "Draw detections from a COCO results file on their images");
  detections->add_option("--images", images, "Image files or folders")->required();
  detections->add_option("--results", results, "COCO results JSON")->required()->check(CLI::ExistingFile);
  detections->add_option("-o,--output", output, "Folder for the drawn images")->required();
  return tool.run(argc, argv, [&] {
    throw mrcnn::not_available_yet("drawing", 6);
    return 0;
  });
}
