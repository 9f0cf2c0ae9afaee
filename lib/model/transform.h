// The model's input and output transforms: normalise, resize by min/max size, pad into a batch;
// then map detections back to each original image and paste the masks into it.
#pragma once

#include <ATen/core/Tensor.h>

#include <random>
#include <vector>

#include "model/image_batch.h"
#include "model/roi_heads.h"
#include "model/settings.h"
#include "model/targets.h"

namespace mrcnn::model {

class Transform {
 public:
  explicit Transform(const ModelSettings& settings) : settings_(settings) {}

  // The same transform resizing every image by one factor instead of min_size/max_size
  // (tiled inference: a tile keeps its native scale, or infer.tile.scale, never upscaled to min_size).
  Transform at_fixed_scale(double scale) const;

  // images: (C, H, W) float in [0, 1] with C = model.input_channels (RGB: 3), any sizes. Inference resizes to the last min_size;
  // training picks one of min_size at random (multi-scale): from the image's target seed when
  // it has one, else with rng. With targets, they are resized with their images (boxes scaled,
  // masks nearest-neighbour). The batch is padded at least to pad_at_least (a data-parallel
  // rank pads its share as the whole global batch is padded).
  ImageBatch batch(const std::vector<at::Tensor>& images, std::mt19937* rng = nullptr,
                   std::vector<Target>* targets = nullptr, ImageSize pad_at_least = {0, 0}) const;

  // The padded size and largest resized image that batch() gives images of these original sizes
  // (rng is advanced as batch() would advance it).
  BatchShape batch_shape(const std::vector<ImageSize>& originals, std::mt19937* rng = nullptr,
                         const std::vector<Target>* targets = nullptr) const;

  // The scale factor and output size for one image (torchvision's rounding); with a fixed scale,
  // floor(side * scale) whatever min_size is.
  ImageSize resized_size(ImageSize original, int64_t min_size) const;

  // Boxes to original-image pixels; masks (D, 1, M, M) pasted into (D, 1, H, W) probabilities.
  void to_original(std::vector<Detections>& detections, const ImageBatch& batch, bool paste_into_image = true) const;

 private:
  int64_t pick_min_size(std::mt19937* rng, const Target* target) const;

  ModelSettings settings_;
  double fixed_scale_ = 0;  // > 0: at_fixed_scale's factor
};

// Boxes (D, 4) from a resized image's pixels to the original image's.
at::Tensor resize_boxes(const at::Tensor& boxes, ImageSize from, ImageSize to);

// The part of an (H, W) image that one pasted mask covers: probabilities of the rows
// y0..y0+h-1 and columns x0..x0+w-1; the rest of the image is 0.
struct PastedMask {
  int64_t x0 = 0, y0 = 0;
  at::Tensor probs;  // (h, w), possibly empty when the box lies outside the image
};

// torchvision's paste_masks_in_image without the full-size images: each M x M mask (padded by
// one pixel) resized bilinearly to its (grown) box and clipped to the image.
std::vector<PastedMask> paste_masks(const at::Tensor& masks, const at::Tensor& boxes, ImageSize image_size);

// The same written into zero (D, 1, H, W) images, as torchvision returns them.
at::Tensor paste_masks_in_image(const at::Tensor& masks, const at::Tensor& boxes, ImageSize image_size);

}  // namespace mrcnn::model
