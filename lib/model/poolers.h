// Multi-scale ROIAlign: each box is cropped from the FPN level that suits its size
// (torchvision's MultiScaleRoIAlign over levels P2-P5).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "model/image_batch.h"

namespace mrcnn::model {

struct RoiPoolSettings {
  int64_t output_size = 7;
  int64_t sampling_ratio = 2;
  bool aligned = false;
};

// features: P2..P5 (P6 is not pooled); boxes: per image, in resized-image pixels.
// Returns (sum of boxes, C, output_size, output_size).
at::Tensor multiscale_roi_align(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                                const std::vector<ImageSize>& image_sizes, const RoiPoolSettings& settings,
                                ImageSize largest_at_least = {0, 0});

// The FPN level index (0 = P2) of each box, by torchvision's LevelMapper (canonical 224 px at level 4).
at::Tensor map_boxes_to_levels(const at::Tensor& boxes, int64_t k_min, int64_t k_max);

}  // namespace mrcnn::model
