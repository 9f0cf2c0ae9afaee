// Running a detector over many image files: batching, unreadable-image policy, progress, COCO
// results and overlays. Shared by mrcnn-infer and the evaluation of a model (mrcnn-eval --config).
#pragma once

#include <string>
#include <vector>

#include "data/label_map.h"
#include "io/image_file.h"
#include "io/json_file.h"
#include "infer/detector.h"
#include "infer/image_lists.h"
#include "infer/tiling.h"
#include "viz/overlay.h"

namespace mrcnn::infer {

struct InferenceJob {
  std::vector<InferenceImage> images;
  float score_threshold = 0.5f;
  int batch_size = 1;  // images per forward pass; with tiling, tiles (one image at a time)
  // Else the first image that fails (unreadable, not a regular file, undecodable, more than
  // max_image_pixels, a shape the model cannot take) stops the run with an Error naming it.
  bool skip_unreadable = false;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  std::string overlay_dir;       // empty: no overlays
  std::vector<int> overlay_bands;  // the model's channels drawn as RGB (3) or gray (1); empty: 0-2
  data::LabelMap labels;
  viz::OverlayStyle overlay_style;
  TileOptions tiling;  // off unless tiling.size > 0
};

struct InferenceSummary {
  int64_t images = 0, detections = 0, skipped = 0;  // skipped: each one logged as a warning
  double seconds = 0;
  Json results = Json::array();  // COCO results records
};

// Throws Error when the detector cannot run the job as asked (tiles on the TF OD API family):
// callers check before they write anything (mrcnn-infer --save-model).
void check_job_fits_detector(const Detector& detector, const InferenceJob& job);

InferenceSummary run_batch_inference(Detector& detector, const InferenceJob& job);
}  // namespace mrcnn::infer
