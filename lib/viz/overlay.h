// Drawing detections on images in the TF Object Detection API's look: a stable colour per class,
// masks blended with a darker outline, boxes, and a filled "name: 97%" tag kept inside the image.
#pragma once

#include <opencv2/core.hpp>

#include <set>
#include <string>
#include <vector>

#include "data/label_map.h"
#include "eval/instances.h"

namespace mrcnn::viz {

struct OverlayStyle {
  float alpha = 0.4f;          // mask opacity
  int line_thickness = 2;      // box and outline width in pixels
  float score_threshold = 0;   // instances below are not drawn
  int max_boxes = 100;         // at most this many, highest scores first
  std::set<int64_t> classes;   // only these class ids; empty: all
  bool show_scores = true;     // "name: 97%" (detections) or "name" (ground truth)
};

// The colour of a class (RGB), the same in every image and run.
cv::Scalar class_color(int64_t class_id);

// A copy of the RGB image with the instances drawn.
cv::Mat draw_instances(const cv::Mat& rgb, const std::vector<eval::Instance>& instances,
                       const data::LabelMap& labels, const OverlayStyle& style = {});

// Names for the drawn copies of many images in one folder: the image's stem + ".png", or
// stem_<id>.png when an earlier image took that name (same file name in another folder), so that
// no drawn image overwrites another.
class OutputNames {
 public:
  std::string claim(const std::string& image_path, int64_t id);

 private:
  std::set<std::string> taken_;
};

}  // namespace mrcnn::viz
