// mrcnn-visualize: draw detections, ground truth, comparisons, contact sheets, training curves
// and precision-recall curves.
#include "core/tool.h"
#include "io/image_file.h"
#include "viz/anchor_figure.h"
#include "viz/visualize_jobs.h"

using namespace mrcnn;

namespace {

// The flags of every subcommand (one runs).
struct Flags {
  viz::DetectionFiles detections;  // detections
  viz::CocoSetFiles coco;          // gt, compare
  double iou = 0.5;                // compare
  viz::DrawOptions draw;           // detections, gt, compare; grid takes its image limits
  std::vector<int64_t> classes;    // into draw.style.classes
  std::vector<std::string> images;  // grid
  viz::SheetLayout sheet;           // grid
  std::string output;               // grid, curves, pr
  std::string metrics;              // curves
  std::string report;               // anchors
  std::string gt, dt, iou_type = "auto";  // pr
  int threads = 0;                        // pr
};

void add_limit_flags(CLI::App* sub, Flags& f, const std::string& max_images_help) {
  sub->add_option("--max-images", f.draw.max_images, max_images_help)->check(CLI::Range(0, 100000000));
  sub->add_option("--max-image-pixels", f.draw.max_image_pixels,
                  "Refuse images with more pixels than this, before decoding them (decompression bombs)")
      ->check(CLI::Range(int64_t{1}, kLargestMaxImagePixels))
      ->capture_default_str();
  sub->add_option("--bands", f.draw.view.bands, "Bands (0-based) drawn as R,G,B or gray, e.g. 3,0,1 (default 0,1,2)")
      ->delimiter(',')
      ->expected(1, 3);
  sub->add_option("--pixel-max", f.draw.view.pixel_max, "16-bit/float images: the value drawn as white, e.g. 4095")
      ->check(CLI::PositiveNumber);
}

void add_style_flags(CLI::App* sub, Flags& f) {
  viz::OverlayStyle& style = f.draw.style;
  sub->add_option("--score-threshold", style.score_threshold, "Draw detections scoring at least this")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--max-boxes", style.max_boxes, "At most this many instances per image, best first")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  sub->add_option("--line-thickness", style.line_thickness, "Box and outline width in pixels")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  sub->add_option("--alpha", style.alpha, "Mask opacity")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--classes", f.classes, "Only these class ids");
  sub->add_option("--label-map", f.draw.label_map,
                  "Class names: label_map.pbtxt or JSON (default: the COCO categories)");
  add_limit_flags(sub, f, "Draw at most this many images (0: all)");
}

CLI::App* add_detections(CLI::App& app, Flags& f) {
  auto* sub = app.add_subcommand("detections", "Draw a COCO results file's detections on their images");
  sub->add_option("--images", f.detections.images, "Image files, folders or globs")->required();
  sub->add_option("--results", f.detections.results, "COCO results JSON (mrcnn-infer's output)")->required();
  sub->add_option("--coco", f.detections.coco,
                  "COCO annotations mapping image ids to files (results without file_name)");
  sub->add_option("-o,--output", f.detections.output, "Folder for the drawn images")->required();
  add_style_flags(sub, f);
  return sub;
}

// gt and compare: the images of a COCO file; compare also takes results and the IoU of a match.
CLI::App* add_coco_set(CLI::App& app, Flags& f, const std::string& name, const std::string& help) {
  const bool compare = name == "compare";
  auto* sub = app.add_subcommand(name, help);
  sub->add_option("--coco", f.coco.coco, "COCO annotations")->required();
  sub->add_option("--image-root", f.coco.image_root, "Folder of the images")->required();
  if (compare) sub->add_option("--results", f.coco.results, "COCO results JSON")->required();
  sub->add_option("-o,--output", f.coco.output, "Folder for the drawn images")->required();
  if (compare)
    sub->add_option("--iou", f.iou, "IoU that makes a match")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  add_style_flags(sub, f);
  return sub;
}

CLI::App* add_grid(CLI::App& app, Flags& f) {
  auto* sub = app.add_subcommand("grid", "A contact sheet of images in a grid");
  sub->add_option("--images", f.images, "Image files, folders or globs")->required();
  sub->add_option("-o,--output", f.output, "The sheet (PNG or JPEG)")->required();
  sub->add_option("--columns", f.sheet.columns, "Images per row")->check(CLI::Range(1, 64))->capture_default_str();
  sub->add_option("--cell-width", f.sheet.cell_width, "Width of each thumbnail in pixels")
      ->check(CLI::Range(16, 4096))
      ->capture_default_str();
  add_limit_flags(sub, f, "At most this many images (0: all)");
  return sub;
}

CLI::App* add_curves(CLI::App& app, Flags& f) {
  auto* sub = app.add_subcommand("curves", "Training curves from mrcnn-train's metrics.jsonl");
  sub->add_option("--metrics", f.metrics, "RUN/metrics.jsonl")->required();
  sub->add_option("-o,--output", f.output, "The figure (PNG)")->required();
  return sub;
}

CLI::App* add_pr(CLI::App& app, Flags& f) {
  auto* sub = app.add_subcommand("pr", "Precision-recall curves at IoU 0.5 and 0.75, per class and overall");
  sub->add_option("--gt", f.gt, "Ground truth, COCO JSON")->required();
  sub->add_option("--dt", f.dt, "Detections, COCO results JSON")->required();
  sub->add_option("-o,--output", f.output, "The figure (PNG)")->required();
  sub->add_option("--iou-type", f.iou_type, "bbox, segm, or auto: segm where the detections have masks, else bbox")
      ->check(CLI::IsMember({"auto", "bbox", "segm"}))
      ->capture_default_str();
  sub->add_option("--threads", f.threads, "Evaluation threads (0: all cores)")->check(CLI::Range(0, 4096));
  return sub;
}

CLI::App* add_anchors(CLI::App& app, Flags& f) {
  auto* sub = app.add_subcommand("anchors", "Training box sizes against the anchors (mrcnn-config anchors --json)");
  sub->add_option("report", f.report, "The report JSON of mrcnn-config anchors --json")->required();
  sub->add_option("-o,--output", f.output, "The figure (PNG)")->required();
  return sub;
}

}  // namespace

int main(int argc, char** argv) {
  Tool tool("mrcnn-visualize",
            "Draw what the toolkit produces: detections and ground truth on images (the TF OD API look), "
            "ground truth next to predictions, contact sheets, training curves and precision-recall curves.",
            "  mrcnn-visualize detections --images photos/ --results results.json -o overlays/\n"
            "  mrcnn-visualize gt --coco val.json --image-root val/ -o gt/\n"
            "  mrcnn-visualize compare --coco val.json --image-root val/ --results results.json -o compare/\n"
            "  mrcnn-visualize grid --images overlays/ -o sheet.png --columns 5\n"
            "  mrcnn-visualize curves --metrics runs/peds/metrics.jsonl -o curves.png\n"
            "  mrcnn-visualize pr --gt val.json --dt results.json -o pr.png\n"
            "  mrcnn-visualize anchors anchors.json -o anchors.png\n");
  CLI::App& app = tool.app();
  app.require_subcommand(1, 1);
  Flags f;
  f.draw.style.score_threshold = 0.5f;  // the TF OD API's min_score_thresh
  CLI::App* detections = add_detections(app, f);
  CLI::App* truth = add_coco_set(app, f, "gt", "Draw the ground truth of a COCO file (crowd regions hatched)");
  CLI::App* comparison = add_coco_set(app, f, "compare", "Ground truth and predictions side by side, matches marked");
  CLI::App* grid = add_grid(app, f);
  CLI::App* curves = add_curves(app, f);
  CLI::App* anchors = add_anchors(app, f);
  add_pr(app, f);
  return tool.run(argc, argv, [&] {
    f.draw.style.classes.insert(f.classes.begin(), f.classes.end());
    if (*detections) viz::draw_detection_files(f.detections, f.draw);
    else if (*truth) viz::draw_coco_ground_truth(f.coco, f.draw);
    else if (*comparison) viz::draw_coco_comparisons(f.coco, f.draw, f.iou);
    else if (*grid) viz::write_contact_sheet(f.images, f.output, f.sheet, f.draw);
    else if (*curves) viz::write_training_curves(f.metrics, f.output);
    else if (*anchors) viz::write_anchor_figure(f.report, f.output);
    else viz::write_precision_recall_curves(f.gt, f.dt, f.iou_type, f.threads, f.output);
    return 0;
  });
}
