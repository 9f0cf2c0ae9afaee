// mrcnn-visualize: draw detections, ground truth, comparisons, contact sheets, training curves
// and precision-recall curves.
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/tool.h"
#include "eval/coco.h"
#include "eval/coco_eval.h"
#include "io/atomic_file.h"
#include "io/image_file.h"
#include "viz/figures.h"
#include "viz/plot.h"

namespace fs = std::filesystem;
using namespace mrcnn;

namespace {

struct Flags {
  std::vector<std::string> images;
  std::string results, coco, image_root, label_map, output, metrics, gt, dt, iou_type = "segm";
  viz::OverlayStyle style;
  std::vector<int64_t> classes;
  double iou = 0.5;
  int max_images = 0, columns = 4, cell_width = 256, threads = 0;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

void add_pixel_limit_flag(CLI::App* sub, Flags& f) {
  sub->add_option("--max-image-pixels", f.max_image_pixels,
                  "Refuse images with more pixels than this, before decoding them (decompression bombs)")
      ->check(CLI::Range(int64_t{1}, kLargestMaxImagePixels))
      ->capture_default_str();
}

void add_style_flags(CLI::App* sub, Flags& f) {
  sub->add_option("--score-threshold", f.style.score_threshold, "Draw detections scoring at least this")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--max-boxes", f.style.max_boxes, "At most this many instances per image, best first")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  sub->add_option("--line-thickness", f.style.line_thickness, "Box and outline width in pixels")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  sub->add_option("--alpha", f.style.alpha, "Mask opacity")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--classes", f.classes, "Only these class ids");
  sub->add_option("--label-map", f.label_map, "Class names: label_map.pbtxt or JSON (default: the COCO categories)");
  sub->add_option("--max-images", f.max_images, "Draw at most this many images (0: all)")
      ->check(CLI::Range(0, 100000000));
  add_pixel_limit_flag(sub, f);
}

data::LabelMap labels_of(const Flags& f, const eval::CocoGroundTruth* gt) {
  if (!f.label_map.empty()) return data::LabelMap::read(f.label_map);
  data::LabelMap labels;
  if (gt)
    for (const auto& c : gt->categories()) labels.set(c.id, c.name);
  return labels;
}

// detections: a results file drawn on its images (matched by the records' file_name, or by id
// through --coco).
int draw_detections(Flags& f) {
  const viz::ResultsByImage results = viz::read_results(f.results);
  std::optional<eval::CocoGroundTruth> gt;
  std::map<std::string, int64_t> id_of_file = results.id_of_file;
  if (!f.coco.empty()) {
    gt = eval::CocoGroundTruth::read(f.coco);
    for (const auto& [id, image] : gt->images()) {
      id_of_file[image.file_name] = id;
      id_of_file[fs::path(image.file_name).filename().string()] = id;
    }
  }
  if (id_of_file.empty() && results.records > 0)
    throw Error(f.results + ": records carry no file_name; give --coco ANN.json to map their image ids to files");
  const data::LabelMap labels = labels_of(f, gt ? &*gt : nullptr);
  prepare_output_folder(f.output);
  std::vector<std::string> paths = expand_image_paths(f.images);
  if (f.max_images > 0 && static_cast<int>(paths.size()) > f.max_images) paths.resize(f.max_images);
  std::map<int64_t, bool> drawn;
  viz::OutputNames names;
  Progress progress("draw", static_cast<int64_t>(paths.size()), "img");
  for (size_t n = 0; n < paths.size(); ++n) {
    const std::string& path = paths[n];
    auto it = id_of_file.find(path);
    if (it == id_of_file.end()) it = id_of_file.find(fs::path(path).filename().string());
    std::vector<eval::Instance> none;
    const auto found = it == id_of_file.end() ? results.by_id.end() : results.by_id.find(it->second);
    if (it != id_of_file.end()) drawn[it->second] = true;
    const cv::Mat image = read_image_rgb(path, f.max_image_pixels);
    write_image_rgb((fs::path(f.output) / names.claim(path, static_cast<int64_t>(n) + 1)).string(),
                    viz::draw_instances(image, found == results.by_id.end() ? none : found->second, labels, f.style));
    progress.advance();
  }
  progress.finish();
  int64_t orphans = 0, orphan_images = 0;
  for (const auto& [id, instances] : results.by_id)
    if (!drawn.count(id)) orphans += static_cast<int64_t>(instances.size()), ++orphan_images;
  if (orphans > 0)
    log::warn("{}: {} results of {} images are not among --images (not drawn)", f.results, orphans, orphan_images);
  log::info("drew {} images into {}", paths.size(), f.output);
  return 0;
}

// The images of a COCO file, with their annotations (and detections) by image.
struct CocoImages {
  eval::CocoGroundTruth gt;
  std::vector<int64_t> ids;
  std::map<int64_t, std::vector<const eval::CocoObject*>> truth, detections;
};

CocoImages coco_images(const Flags& f, const std::vector<eval::CocoObject>* dts) {
  CocoImages c{eval::CocoGroundTruth::read(f.coco), {}, {}, {}};
  for (const auto& [id, image] : c.gt.images()) c.ids.push_back(id);
  if (f.max_images > 0 && static_cast<int>(c.ids.size()) > f.max_images) c.ids.resize(f.max_images);
  for (const auto& a : c.gt.annotations())
    if (f.style.classes.empty() || f.style.classes.count(a.category_id)) c.truth[a.image_id].push_back(&a);
  if (dts)
    for (const auto& d : *dts) c.detections[d.image_id].push_back(&d);
  return c;
}

int draw_truth(Flags& f) {
  const CocoImages c = coco_images(f, nullptr);
  const data::LabelMap labels = labels_of(f, &c.gt);
  prepare_output_folder(f.output);
  viz::OutputNames names;
  Progress progress("draw", static_cast<int64_t>(c.ids.size()), "img");
  for (const int64_t id : c.ids) {
    const std::string file = c.gt.images().at(id).file_name;
    const cv::Mat image = read_image_rgb((fs::path(f.image_root) / file).string(), f.max_image_pixels);
    const auto it = c.truth.find(id);
    write_image_rgb((fs::path(f.output) / names.claim(file, id)).string(),
                    viz::draw_ground_truth(image, it == c.truth.end() ? decltype(it->second){} : it->second, c.gt,
                                           labels, f.style));
    progress.advance();
  }
  progress.finish();
  log::info("drew the ground truth of {} images into {}", c.ids.size(), f.output);
  return 0;
}

int draw_comparisons(Flags& f) {
  const eval::CocoGroundTruth probe = eval::CocoGroundTruth::read(f.coco);
  const std::vector<eval::CocoObject> dts = eval::read_detections(f.results, probe);
  const CocoImages c = coco_images(f, &dts);
  const data::LabelMap labels = labels_of(f, &c.gt);
  prepare_output_folder(f.output);
  int matched = 0, false_positives = 0, missed = 0;
  viz::OutputNames names;
  Progress progress("compare", static_cast<int64_t>(c.ids.size()), "img");
  for (const int64_t id : c.ids) {
    const std::string file = c.gt.images().at(id).file_name;
    const cv::Mat image = read_image_rgb((fs::path(f.image_root) / file).string(), f.max_image_pixels);
    const std::vector<const eval::CocoObject*> none;
    const auto t = c.truth.find(id);
    const auto d = c.detections.find(id);
    const viz::Comparison cmp = viz::compare(image, t == c.truth.end() ? none : t->second,
                                             d == c.detections.end() ? none : d->second, c.gt, labels, f.style, f.iou);
    matched += cmp.matched, false_positives += cmp.false_positives, missed += cmp.missed;
    write_image_rgb((fs::path(f.output) / names.claim(file, id)).string(), cmp.image);
    progress.advance();
  }
  progress.finish();
  log::info("{} images into {}: {} matched, {} false positives, {} missed (IoU {}, score >= {})", c.ids.size(),
            f.output, matched, false_positives, missed, f.iou, f.style.score_threshold);
  return 0;
}

int draw_grid(Flags& f) {
  check_output_file(f.output);
  std::vector<std::string> paths = expand_image_paths(f.images);
  if (paths.empty()) throw Error("no images to put in the grid");
  if (f.max_images > 0 && static_cast<int>(paths.size()) > f.max_images) paths.resize(f.max_images);
  std::vector<cv::Mat> images;
  std::vector<std::string> captions;
  for (const auto& p : paths) {
    images.push_back(read_image_rgb(p, f.max_image_pixels));
    captions.push_back(fs::path(p).filename().string());
  }
  write_image_rgb(f.output, viz::contact_sheet(images, captions, f.columns, f.cell_width));
  log::info("contact sheet of {} images written to {}", paths.size(), f.output);
  return 0;
}

int draw_curves(Flags& f) {
  check_output_file(f.output);
  const viz::CurvesFigure figure = viz::training_curves(f.metrics);
  if (figure.skipped_lines > 0)
    log::warn("{}: skipped {} lines that are not metrics records", f.metrics, figure.skipped_lines);
  write_image_rgb(f.output, figure.image);
  log::info("curves of {} records written to {}", figure.records, f.output);
  return 0;
}

int draw_pr(Flags& f) {
  check_output_file(f.output);
  const eval::CocoGroundTruth gt = eval::CocoGroundTruth::read(f.gt);
  const auto dts = eval::read_detections(f.dt, gt);
  const auto type = f.iou_type == "bbox" ? eval::IouType::Bbox : eval::IouType::Segm;
  write_image_rgb(f.output, viz::precision_recall_curves(eval::evaluate(gt, dts, type, f.threads), gt));
  log::info("precision-recall curves written to {}", f.output);
  return 0;
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
            "  mrcnn-visualize pr --gt val.json --dt results.json -o pr.png\n");
  CLI::App& app = tool.app();
  app.require_subcommand(1, 1);
  Flags f;
  f.style.score_threshold = 0.5f;  // the TF OD API's min_score_thresh
  auto* detections = app.add_subcommand("detections", "Draw a COCO results file's detections on their images");
  detections->add_option("--images", f.images, "Image files, folders or globs")->required();
  detections->add_option("--results", f.results, "COCO results JSON (mrcnn-infer's output)")->required();
  detections->add_option("--coco", f.coco, "COCO annotations mapping image ids to files (results without file_name)");
  detections->add_option("-o,--output", f.output, "Folder for the drawn images")->required();
  add_style_flags(detections, f);

  auto* truth = app.add_subcommand("gt", "Draw the ground truth of a COCO file (crowd regions hatched)");
  truth->add_option("--coco", f.coco, "COCO annotations")->required();
  truth->add_option("--image-root", f.image_root, "Folder of the images")->required();
  truth->add_option("-o,--output", f.output, "Folder for the drawn images")->required();
  add_style_flags(truth, f);

  auto* comparison = app.add_subcommand("compare", "Ground truth and predictions side by side, matches marked");
  comparison->add_option("--coco", f.coco, "COCO annotations")->required();
  comparison->add_option("--image-root", f.image_root, "Folder of the images")->required();
  comparison->add_option("--results", f.results, "COCO results JSON")->required();
  comparison->add_option("-o,--output", f.output, "Folder for the drawn images")->required();
  comparison->add_option("--iou", f.iou, "IoU that makes a match")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  add_style_flags(comparison, f);

  auto* grid = app.add_subcommand("grid", "A contact sheet of images in a grid");
  grid->add_option("--images", f.images, "Image files, folders or globs")->required();
  grid->add_option("-o,--output", f.output, "The sheet (PNG or JPEG)")->required();
  grid->add_option("--columns", f.columns, "Images per row")->check(CLI::Range(1, 64))->capture_default_str();
  grid->add_option("--cell-width", f.cell_width, "Width of each thumbnail in pixels")
      ->check(CLI::Range(16, 4096))
      ->capture_default_str();
  grid->add_option("--max-images", f.max_images, "At most this many images (0: all)")
      ->check(CLI::Range(0, 100000000));
  add_pixel_limit_flag(grid, f);

  auto* curves = app.add_subcommand("curves", "Training curves from mrcnn-train's metrics.jsonl");
  curves->add_option("--metrics", f.metrics, "RUN/metrics.jsonl")->required();
  curves->add_option("-o,--output", f.output, "The figure (PNG)")->required();

  auto* pr = app.add_subcommand("pr", "Precision-recall curves at IoU 0.5 and 0.75, per class and overall");
  pr->add_option("--gt", f.gt, "Ground truth, COCO JSON")->required();
  pr->add_option("--dt", f.dt, "Detections, COCO results JSON")->required();
  pr->add_option("-o,--output", f.output, "The figure (PNG)")->required();
  pr->add_option("--iou-type", f.iou_type, "bbox or segm")->check(CLI::IsMember({"bbox", "segm"}))->capture_default_str();
  pr->add_option("--threads", f.threads, "Evaluation threads (0: all cores)")
      ->check(CLI::Range(0, 4096));

  return tool.run(argc, argv, [&] {
    f.style.classes.insert(f.classes.begin(), f.classes.end());
    if (*detections) return draw_detections(f);
    if (*truth) return draw_truth(f);
    if (*comparison) return draw_comparisons(f);
    if (*grid) return draw_grid(f);
    if (*curves) return draw_curves(f);
    return draw_pr(f);
  });
}
