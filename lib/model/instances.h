// What detection produces for one image, as plain values (no libtorch): boxes, scores, classes
// and RLE masks in original-image pixels.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "eval/rle.h"

namespace mrcnn::model {

struct Instance {
  std::array<float, 4> box{};  // x1, y1, x2, y2 in original-image pixels
  float score = 0;
  int64_t label = 0;  // class id (1..num_classes-1)
  eval::Rle mask;     // pasted probability > 0.5
};

struct ImageDetections {
  int64_t height = 0, width = 0;
  std::vector<Instance> instances;  // by decreasing score
};

}  // namespace mrcnn::model
