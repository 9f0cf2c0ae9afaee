// A padded batch of images and the sizes that map results back to each original image.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

namespace mrcnn::model {

using ImageSize = std::pair<int64_t, int64_t>;  // (height, width)

struct ImageBatch {
  at::Tensor tensor;                     // (N, 3, H, W), normalised, zero-padded to a multiple of size_divisible
  std::vector<ImageSize> image_sizes;     // each image's size after resizing, before padding
  std::vector<ImageSize> original_sizes;  // each image's size as given
};

// What a data-parallel process must know of the whole global batch to compute on its share what
// one process computes on all of it: the padded size, and the largest resized image (from which
// MultiScaleRoIAlign infers its level scales, as torchvision's does). {0, 0}: this batch's own.
struct BatchShape {
  ImageSize padded{0, 0};
  ImageSize largest{0, 0};
};

}  // namespace mrcnn::model
