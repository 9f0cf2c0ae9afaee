// ROIAlign (Mask R-CNN's feature cropping), forward and backward, differentiable through autograd.
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops {

// input (N, C, H, W); rois (K, 5) rows of (batch index, x1, y1, x2, y2) in input-image pixels.
// Returns (K, C, output_h, output_w). sampling_ratio <= 0 means ceil(roi size / output size)
// points per bin; aligned shifts the box by half a pixel (torchvision's aligned=True).
at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                     int64_t output_w, int64_t sampling_ratio, bool aligned);

}  // namespace mrcnn::ops
