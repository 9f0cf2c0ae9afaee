// Mask pasting: Mask R-CNN's M x M mask probabilities put into image coordinates as binary crops
// (torchvision's paste_masks_in_image, without materialising full-size images).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mrcnn::ops {

// Where one M x M mask lands: its box grown by the one-pixel padding (x0, y0, w, h) and the part of
// that box inside the image (cx0, cy0, cw, ch; cw or ch is 0 when the box lies outside).
struct MaskPlacement {
  int64_t x0 = 0, y0 = 0, w = 1, h = 1;
  int64_t cx0 = 0, cy0 = 0, cw = 0, ch = 0;
};

// boxes (D, 4) x1 y1 x2 y2 in image pixels, on any device (torchvision's expand_boxes arithmetic,
// on that device); mask_size M; the image's height and width.
std::vector<MaskPlacement> mask_placements(const at::Tensor& boxes, int64_t mask_size, int64_t image_h,
                                           int64_t image_w);

// One detection's probabilities over its visible part (ch, cw): the mask, padded by a zero pixel on
// each side, resized bilinearly to (h, w) and cropped. mask (M, M). The per-mask ATen path.
at::Tensor pasted_mask_probs(const at::Tensor& mask, const MaskPlacement& placement);

// Every detection's visible part, 1 where the pasted probability exceeds threshold, concatenated
// row by row in detection order, on the host (uint8, one transfer from the GPU). masks (D, M, M)
// or (D, 1, M, M). One CUDA kernel launch when built with the CUDA kernels and the masks are on
// CUDA in float32; else pasted_mask_probs per detection.
at::Tensor paste_masks_binary(const at::Tensor& masks, const std::vector<MaskPlacement>& placements,
                              double threshold);

}  // namespace mrcnn::ops
