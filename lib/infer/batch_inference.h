// Running a detector over many image files: batching, unreadable-image policy, progress, COCO
// results and overlays. Shared by mrcnn-infer and the evaluation of a model (mrcnn-eval --config).
#pragma once

#include <string>
#include <vector>

#include "data/datasets.h"
#include "data/label_map.h"
#include "io/image_file.h"
#include "io/json_file.h"
#include "infer/detector.h"
#include "viz/overlay.h"

namespace mrcnn::infer {

struct InferenceImage {
  int64_t id = 0;
  std::string path;
  std::string file_name;  // written into each record when non-empty
  std::string record_file;    // TFRecord data sets: the image is in this file...
  int64_t record_offset = -1; // ...in the record at this byte offset
};

struct InferenceJob {
  std::vector<InferenceImage> images;
  float score_threshold = 0.5f;
  int batch_size = 1;
  // Else the first image that fails (unreadable, not a regular file, undecodable, more than
  // max_image_pixels, a shape the model cannot take) stops the run with an Error naming it.
  bool skip_unreadable = false;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  std::string overlay_dir;       // empty: no overlays
  data::LabelMap labels;
  viz::OverlayStyle overlay_style;
};

struct InferenceSummary {
  int64_t images = 0, detections = 0, skipped = 0;  // skipped: each one logged as a warning
  double seconds = 0;
  Json results = Json::array();  // COCO results records
};

InferenceSummary run_batch_inference(Detector& detector, const InferenceJob& job);

// Images 1..N in sorted path order, from files, folders and globs (file_name = the path).
std::vector<InferenceImage> images_from_paths(const std::vector<std::string>& inputs);

// The images of a COCO annotation file, with their ids, under image_root.
std::vector<InferenceImage> images_from_coco(const std::string& annotation_file, const std::string& image_root);

// The images of a configured data set in any format (coco, mask_png, tfrecord), with the image
// ids its reader gives them (the ids of data::coco_document for the same set).
std::vector<InferenceImage> images_from_dataset(const data::DatasetSpec& spec);

}  // namespace mrcnn::infer
