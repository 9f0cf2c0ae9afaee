// One training or validation image with its instances, as the data readers produce it
// (no libtorch: the loader turns these into tensors).
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eval/rle.h"

namespace mrcnn::data {

struct Sample {
  int64_t image_id = 0;
  std::string image_path;                      // the file; for a TFRecord set, image/filename (for messages)
  std::string record_file;                     // TFRecord sets: the file holding the encoded image...
  int64_t record_offset = -1;                  // ...and the byte offset of its record
  std::string embedded_image_json;             // LabelMe: the JSON whose imageData holds the image
  cv::Mat image;                               // CV_8UC3 RGB, or CV_32FC(N) on the 0-255 scale (io/image_bands.h); empty until loaded
  int64_t height = 0, width = 0;
  std::vector<std::array<float, 4>> boxes;     // x1, y1, x2, y2 in pixels
  std::vector<int64_t> labels;                 // class ids, 1..num_classes-1
  std::vector<eval::Rle> mask_rles;            // the instances' masks as read (decoded by load_pixels)
  std::vector<cv::Mat> masks;                  // one H x W CV_8U (0/1) mask per instance, once loaded
  int64_t batch_position = 0;                  // set by the loader: its place in its step's global batch
};

// Why a reader dropped an image or an annotation (data.on_invalid = skip), counted for the log.
struct ReadReport {
  int64_t images = 0, annotations = 0;
  int64_t skipped_images = 0, skipped_annotations = 0, crowd_regions = 0;
  int64_t empty_images = 0;          // images without objects (negatives), kept or left out
  bool empty_images_left_out = false;  // data.keep_empty_images false
  std::vector<std::string> reasons;  // the first few, "file: what"
  std::map<int64_t, std::string> class_names;  // names a label format gave its class ids

  void skip(const std::string& reason, bool image);
  std::string summary(const std::string& source) const;
};

}  // namespace mrcnn::data
