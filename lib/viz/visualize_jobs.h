// mrcnn-visualize's subcommands as library calls, from the files they read to the files they write:
// detections drawn on image files, a COCO set's ground truth or comparisons, contact sheets,
// training curves and precision-recall curves. Each call logs what it did, as the tool reports it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "eval/coco.h"
#include "eval/coco_eval.h"
#include "io/image_bands.h"
#include "io/image_file.h"
#include "viz/figures.h"
#include "viz/overlay.h"

namespace mrcnn::viz {

// How images are drawn and which of them (the subcommands that read images share these).
struct DrawOptions {
  OverlayStyle style;
  std::string label_map;  // class names (label_map.pbtxt or JSON); empty: the COCO file's categories
  int max_images = 0;     // at most this many images (0: all)
  int64_t max_image_pixels = kDefaultMaxImagePixels;  // larger images are refused before decoding
  BandView view;  // which bands of multi-band or 16-bit images are drawn, and their full scale
};

// `detections`: a COCO results file drawn on image files. Results are matched to the images by
// their file_name, or by image id through the COCO annotations file (`coco`, optional).
struct DetectionFiles {
  std::vector<std::string> images;  // files, folders or globs
  std::string results, coco;
  std::string output;  // folder of the drawn images
};
struct DetectionsDrawn {
  int64_t images = 0;
  int64_t results_not_drawn = 0, images_not_drawn = 0;  // results of images not among `images`
};
DetectionsDrawn draw_detection_files(const DetectionFiles& files, const DrawOptions& options);

// `gt` and `compare`: the images of a COCO file, found under image_root by their file_name.
struct CocoSetFiles {
  std::string coco, image_root;
  std::string results;  // compare: the COCO results file
  std::string output;   // folder of the drawn images
};
// The ground truth of each image; returns how many images were drawn.
int64_t draw_coco_ground_truth(const CocoSetFiles& files, const DrawOptions& options);
struct ComparisonTotals {
  int64_t images = 0;
  int matched = 0, false_positives = 0, missed = 0;
};
// Ground truth next to predictions for each image (see viz::compare), with the totals.
ComparisonTotals draw_coco_comparisons(const CocoSetFiles& files, const DrawOptions& options,
                                       double iou_threshold);

// `grid`: the images (files, folders or globs; options.max_images of them) as one contact sheet.
struct SheetLayout {
  int columns = 4, cell_width = 256;
};
void write_contact_sheet(const std::vector<std::string>& images, const std::string& output, SheetLayout layout,
                         const DrawOptions& options);

// `curves`: training_curves of mrcnn-train's metrics.jsonl as a PNG.
void write_training_curves(const std::string& metrics_path, const std::string& output);

// `pr`: precision_recall_curves of detections evaluated against ground truth (COCO files);
// iou_type bbox, segm or auto (segm where the detections have masks, else bbox).
void write_precision_recall_curves(const std::string& gt_path, const std::string& dt_path,
                                   const std::string& iou_type, int threads, const std::string& output);

// The steps above that hold logic of their own.

// Image ids by image file name: the results' own file names, then (winning) the COCO file's
// images, each by its file_name and by its basename.
std::map<std::string, int64_t> image_ids_by_file(const ResultsByImage& results, const eval::CocoGroundTruth* gt);

// The id of an image file: by its path as given, else by its basename; none when unknown.
std::optional<int64_t> image_id_of(const std::map<std::string, int64_t>& ids, const std::string& path);

// The images of a COCO file to draw (the first max_images by id; 0: all), with their ground
// truth of `classes` (empty: all) and their detections (all classes), by image id. The object
// pointers point into `gt` and `detections`.
struct CocoImages {
  eval::CocoGroundTruth gt;
  std::vector<int64_t> ids;
  std::map<int64_t, std::vector<const eval::CocoObject*>> truth, detections;
};
CocoImages select_coco_images(eval::CocoGroundTruth gt, const std::vector<eval::CocoObject>* detections,
                              int max_images, const std::set<int64_t>& classes);

}  // namespace mrcnn::viz
