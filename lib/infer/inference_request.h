// What mrcnn-infer is asked for, turned into a detector and a job: the flags where given, else the
// configuration's infer.* keys; the images from files, a COCO file or a configured data set.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/label_map.h"
#include "infer/batch_inference.h"
#include "infer/detector.h"
#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn::infer {

struct InferenceRequest {
  std::string weights;              // weight file, or the self-contained model file itself
  std::vector<std::string> inputs;  // image files, folders, globs (ids 1..N in sorted path order)
  std::string coco, image_root;     // or the images of a COCO file, with its ids
  std::string dataset;              // or the configuration's data.<dataset> set ("train", "val")
  std::string output;               // COCO results JSON
  std::string overlay_dir;          // empty: no overlays
  std::vector<int> overlay_bands;   // empty: infer.overlay_bands
  std::string label_map;            // empty: the model's class names, else data.train.label_map
  std::optional<data::LabelMap> model_labels;  // the class names a self-contained model carries
  std::string device, precision;    // empty: infer.device, infer.precision
  float score_threshold = -1;       // < 0: infer.score_threshold
  int batch_size = 0;               // 0: infer.batch_size
  int threads = 0;                  // 0: libtorch's default
  bool skip_unreadable = false;     // else the first unusable image stops the run
  bool allow_partial = false;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  // Tiling flags; unset (< 0, or false): the configuration's infer.tile.* keys.
  int64_t tile_size = -1;
  double tile_overlap = -1, tile_scale = -1;
  bool tile_full_image = false;
};

// The detector's options under a resolved configuration; resolves the device first, so that an
// unavailable one is reported before anything else is checked.
DetectorOptions detector_options(const Json& config, const InferenceRequest& request);

// The tiling asked for: the flags where given, else infer.tile.*; throws Error for values out of
// range (naming the key and the flag).
TileOptions tile_options(const Json& config, const InferenceRequest& request);

// Fails before any work when no images are named or the outputs cannot be written.
void check_request(const InferenceRequest& request);

// The images and the settings of the run (reads a COCO file or data set to list the images).
InferenceJob inference_job(const Json& config, const InferenceRequest& request);

// The closing lines of a run: images, detections, skipped images, speed, peak GPU memory.
void log_summary(const InferenceSummary& summary, const InferenceJob& job, const Detector& detector,
                 const std::string& output);

}  // namespace mrcnn::infer
