// The CUDA kernel of mask pasting: every detection's M x M probabilities resized bilinearly to its
// box, clipped to the image and thresholded, in one launch (see ops/paste_masks.h for the public
// function and the per-mask ATen path it is checked against).
#pragma once

#include <ATen/core/Tensor.h>

namespace mrcnn::ops::cuda {

// masks (D, M, M) float probabilities on one CUDA device; placements (D, 8) int64 rows of
// (x0, y0, w, h, cx0, cy0, cw, ch): the grown box and its visible part (see ops::MaskPlacement);
// offsets (D,) int64: where each visible part starts in the output. Returns (total,) uint8 on that
// device: 1 where the padded mask resized to (h, w) exceeds threshold, row by row per detection.
at::Tensor paste_masks_kernel(const at::Tensor& masks, const at::Tensor& placements, const at::Tensor& offsets,
                              int64_t total, double threshold);

}  // namespace mrcnn::ops::cuda
