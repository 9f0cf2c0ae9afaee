#include "viz/visualize_jobs.h"

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/atomic_file.h"
#include "io/image_bands.h"
#include "viz/plot.h"

namespace fs = std::filesystem;

namespace mrcnn::viz {
namespace {

using ObjectsByImage = std::map<int64_t, std::vector<const eval::CocoObject*>>;

// Class names: the label map file when given, else the COCO file's categories (else none).
data::LabelMap labels_of(const DrawOptions& options, const eval::CocoGroundTruth* gt) {
  if (!options.label_map.empty()) return data::LabelMap::read(options.label_map);
  data::LabelMap labels;
  if (gt)
    for (const auto& c : gt->categories()) labels.set(c.id, c.name);
  return labels;
}

// The first `count` items (0: all).
template <class T>
void keep_first(std::vector<T>& items, int count) {
  if (count > 0 && static_cast<int>(items.size()) > count) items.resize(count);
}

// An image's results; none for an image without id or results.
const std::vector<eval::Instance>& results_of(const ResultsByImage& results, std::optional<int64_t> id) {
  static const std::vector<eval::Instance> kNone;
  const auto found = id ? results.by_id.find(*id) : results.by_id.end();
  return found == results.by_id.end() ? kNone : found->second;
}

// An image's objects; none for an image without any.
const std::vector<const eval::CocoObject*>& objects_of(const ObjectsByImage& objects, int64_t id) {
  static const std::vector<const eval::CocoObject*> kNone;
  const auto found = objects.find(id);
  return found == objects.end() ? kNone : found->second;
}

// The results of images that were not drawn, counted for a warning (a wrong --images folder?).
void count_not_drawn(const ResultsByImage& results, const std::set<int64_t>& drawn, DetectionsDrawn& out) {
  for (const auto& [id, instances] : results.by_id)
    if (!drawn.count(id)) out.results_not_drawn += static_cast<int64_t>(instances.size()), ++out.images_not_drawn;
}

// An image to draw: the file read, the name its drawn copy takes after, and the number that
// tells images of the same name apart (see OutputNames).
struct ImageToDraw {
  std::string path, name;
  int64_t id = 0;
};

// Draws each image with `draw(image, index)` into the output folder, with a progress line.
template <class Draw>
void draw_each(const std::vector<ImageToDraw>& images, const std::string& output, const DrawOptions& options,
               const char* activity, Draw draw) {
  OutputNames names;
  Progress progress(activity, static_cast<int64_t>(images.size()), "img");
  for (size_t n = 0; n < images.size(); ++n) {
    const cv::Mat image = read_image_view(images[n].path, options.view, options.max_image_pixels);
    write_image_rgb((fs::path(output) / names.claim(images[n].name, images[n].id)).string(), draw(image, n));
    progress.advance();
  }
  progress.finish();
}

// The selected images of a COCO set: read under image_root, named by the COCO file_name.
std::vector<ImageToDraw> images_of(const CocoImages& c, const std::string& image_root) {
  std::vector<ImageToDraw> images;
  for (const int64_t id : c.ids) {
    const std::string& file = c.gt.images().at(id).file_name;
    images.push_back({(fs::path(image_root) / file).string(), file, id});
  }
  return images;
}

}  // namespace

std::map<std::string, int64_t> image_ids_by_file(const ResultsByImage& results, const eval::CocoGroundTruth* gt) {
  std::map<std::string, int64_t> ids = results.id_of_file;
  if (gt)
    for (const auto& [id, image] : gt->images()) {
      ids[image.file_name] = id;
      ids[fs::path(image.file_name).filename().string()] = id;
    }
  return ids;
}

std::optional<int64_t> image_id_of(const std::map<std::string, int64_t>& ids, const std::string& path) {
  auto it = ids.find(path);
  if (it == ids.end()) it = ids.find(fs::path(path).filename().string());
  if (it == ids.end()) return std::nullopt;
  return it->second;
}

CocoImages select_coco_images(eval::CocoGroundTruth gt, const std::vector<eval::CocoObject>* detections,
                              int max_images, const std::set<int64_t>& classes) {
  CocoImages c{std::move(gt), {}, {}, {}};
  for (const auto& [id, image] : c.gt.images()) c.ids.push_back(id);
  keep_first(c.ids, max_images);
  for (const auto& a : c.gt.annotations())
    if (classes.empty() || classes.count(a.category_id)) c.truth[a.image_id].push_back(&a);
  if (detections)
    for (const auto& d : *detections) c.detections[d.image_id].push_back(&d);
  return c;
}

DetectionsDrawn draw_detection_files(const DetectionFiles& files, const DrawOptions& options) {
  const ResultsByImage results = read_results(files.results);
  std::optional<eval::CocoGroundTruth> gt;
  if (!files.coco.empty()) gt = eval::CocoGroundTruth::read(files.coco);
  const std::map<std::string, int64_t> ids = image_ids_by_file(results, gt ? &*gt : nullptr);
  if (ids.empty() && results.records > 0)
    throw Error(files.results + ": records carry no file_name; give --coco ANN.json to map their image ids to files");
  const data::LabelMap labels = labels_of(options, gt ? &*gt : nullptr);
  prepare_output_folder(files.output);
  std::vector<std::string> paths = expand_image_paths(files.images);
  keep_first(paths, options.max_images);
  std::vector<ImageToDraw> images;
  for (size_t n = 0; n < paths.size(); ++n) images.push_back({paths[n], paths[n], static_cast<int64_t>(n) + 1});
  std::set<int64_t> drawn;
  draw_each(images, files.output, options, "draw", [&](const cv::Mat& image, size_t n) {
    const std::optional<int64_t> id = image_id_of(ids, paths[n]);
    if (id) drawn.insert(*id);
    return draw_instances(image, results_of(results, id), labels, options.style);
  });
  DetectionsDrawn out{static_cast<int64_t>(paths.size())};
  count_not_drawn(results, drawn, out);
  if (out.results_not_drawn > 0)
    log::warn("{}: {} results of {} images are not among --images (not drawn)", files.results, out.results_not_drawn,
              out.images_not_drawn);
  log::info("drew {} images into {}", paths.size(), files.output);
  return out;
}

int64_t draw_coco_ground_truth(const CocoSetFiles& files, const DrawOptions& options) {
  const CocoImages c =
      select_coco_images(eval::CocoGroundTruth::read(files.coco), nullptr, options.max_images, options.style.classes);
  const data::LabelMap labels = labels_of(options, &c.gt);
  prepare_output_folder(files.output);
  draw_each(images_of(c, files.image_root), files.output, options, "draw",
            [&](const cv::Mat& image, size_t n) {
              return draw_ground_truth(image, objects_of(c.truth, c.ids[n]), c.gt, labels, options.style);
  });
  log::info("drew the ground truth of {} images into {}", c.ids.size(), files.output);
  return static_cast<int64_t>(c.ids.size());
}

ComparisonTotals draw_coco_comparisons(const CocoSetFiles& files, const DrawOptions& options,
                                       double iou_threshold) {
  eval::CocoGroundTruth gt = eval::CocoGroundTruth::read(files.coco);
  const std::vector<eval::CocoObject> dts = eval::read_detections(files.results, gt);
  const CocoImages c = select_coco_images(std::move(gt), &dts, options.max_images, options.style.classes);
  const data::LabelMap labels = labels_of(options, &c.gt);
  prepare_output_folder(files.output);
  ComparisonTotals totals{static_cast<int64_t>(c.ids.size())};
  draw_each(images_of(c, files.image_root), files.output, options, "compare",
            [&](const cv::Mat& image, size_t n) {
    const Comparison cmp = compare(image, objects_of(c.truth, c.ids[n]), objects_of(c.detections, c.ids[n]), c.gt,
                                   labels, options.style, iou_threshold);
    totals.matched += cmp.matched, totals.false_positives += cmp.false_positives, totals.missed += cmp.missed;
    return cmp.image;
  });
  log::info("{} images into {}: {} matched, {} false positives, {} missed (IoU {}, score >= {})", c.ids.size(),
            files.output, totals.matched, totals.false_positives, totals.missed, iou_threshold,
            options.style.score_threshold);
  return totals;
}

void write_contact_sheet(const std::vector<std::string>& images, const std::string& output, SheetLayout layout,
                         const DrawOptions& options) {
  check_output_file(output);
  std::vector<std::string> paths = expand_image_paths(images);
  if (paths.empty()) throw Error("no images to put in the grid");
  keep_first(paths, options.max_images);
  std::vector<cv::Mat> thumbnails;
  std::vector<std::string> captions;
  for (const auto& p : paths) {
    thumbnails.push_back(read_image_view(p, options.view, options.max_image_pixels));
    captions.push_back(fs::path(p).filename().string());
  }
  write_image_rgb(output, contact_sheet(thumbnails, captions, layout.columns, layout.cell_width));
  log::info("contact sheet of {} images written to {}", paths.size(), output);
}

void write_training_curves(const std::string& metrics_path, const std::string& output) {
  check_output_file(output);
  const CurvesFigure figure = training_curves(metrics_path);
  if (figure.skipped_lines > 0)
    log::warn("{}: skipped {} lines that are not metrics records", metrics_path, figure.skipped_lines);
  write_image_rgb(output, figure.image);
  log::info("curves of {} records written to {}", figure.records, output);
}

void write_precision_recall_curves(const std::string& gt_path, const std::string& dt_path,
                                   const std::string& iou_type, int threads, const std::string& output) {
  check_output_file(output);
  const eval::CocoGroundTruth gt = eval::CocoGroundTruth::read(gt_path);
  const std::vector<eval::CocoObject> dts = eval::read_detections(dt_path, gt);
  // auto: segm for mask results, bbox for box results (a model without masks); the last type
  // mrcnn-eval would score under "both" is that one. segm on box results is its one error.
  const eval::IouType type = eval::iou_types_to_score(iou_type == "auto" ? "both" : iou_type, dts, dt_path).back();
  write_image_rgb(output, precision_recall_curves(eval::evaluate(gt, dts, type, threads), gt));
  log::info("{} precision-recall curves written to {}", eval::iou_type_name(type), output);
}

}  // namespace mrcnn::viz
