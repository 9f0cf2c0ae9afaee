// What detection produces for one image, as plain values (no libtorch): boxes, scores, classes
// and RLE masks in original-image pixels; and the COCO results records they are written as.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/rle.h"
#include "io/json_file.h"

namespace mrcnn::eval {

struct Instance {
  std::array<float, 4> box{};  // x1, y1, x2, y2 in original-image pixels
  float score = 0;
  int64_t label = 0;  // class id (1..num_classes-1)
  Rle mask;           // pasted probability > 0.5
};

struct ImageDetections {
  int64_t height = 0, width = 0;
  std::vector<Instance> instances;  // by decreasing score
  bool has_masks = true;            // false: a box-only model; the instances' masks are empty
};

// One COCO results record per instance: {image_id, category_id, bbox [x, y, w, h], score,
// segmentation {size [h, w], counts}} (+ file_name when given); without masks, no segmentation
// (box results, as pycocotools' loadRes reads them for bbox evaluation).
Json to_coco_results(const ImageDetections& detections, int64_t image_id, const std::string& file_name = "");

}  // namespace mrcnn::eval
