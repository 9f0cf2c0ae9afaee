// A training image's groundtruth framed as the TF OD API's input pipeline frames it
// (inputs.py transform_input_data, then FasterRCNNMetaArch._format_groundtruth_data): boxes
// normalised to the image, re-framed to the padded input and made absolute with its size; masks
// resized nearest-neighbour by the resizer and zero-padded to the input; classes from 1.
#pragma once

#include <ATen/core/Tensor.h>

#include "model/tfod_losses.h"
#include "model/tfod_ops.h"

namespace mrcnn::model {

// TF's legacy resize_nearest_neighbor (align_corners false, half_pixel_centers false) of (N, H, W)
// masks to height x width: source index floor(destination x float32(in / out)), clamped.
at::Tensor tf_resize_nearest(const at::Tensor& masks, int64_t height, int64_t width);

// boxes (N, 4) [x1, y1, x2, y2] in the pixels of an image of image_height x image_width, labels
// (N, int64, from 1), masks (N, image_height, image_width) 0/1 of any type (undefined: none); the
// resizer made `resized` of the image and padded it to `padded`. In float32, in TF's order:
// y / image_height, times 1 / (padded / resized) (change_coordinate_frame), times padded.
TfodGroundtruth tfod_frame_groundtruth(const at::Tensor& boxes, const at::Tensor& labels,
                                               const at::Tensor& masks, int64_t image_height, int64_t image_width,
                                               const ResizedShape& resized, const ResizedShape& padded);

}  // namespace mrcnn::model
