// The synthetic "shapes" data set: squares, circles and triangles of random colour, size and
// overlap on a noisy background, written as COCO (PNG images + JSON with RLE masks). Deterministic
// for a seed; the tiny preset, the tests and the demo train on it. Its small-object variant (many
// shapes of 7-39 px on large images, some touching) is what the anchor fit and tiled inference are for.
#pragma once

#include <cstdint>
#include <string>

namespace mrcnn::data {

struct ShapesOptions {
  int train_images = 1000;  // synthetic data is free: enough that the tiny preset does not overfit
  int val_images = 50;
  int image_size = 128;
  uint64_t seed = 7;
  // Small objects: 50-200 shapes per 2048x2048 image (the same density at other sizes), 7-39 px a
  // side, none overlapping, about a third placed touching another.
  bool small_objects = false;
  // 4-band images (RGBA PNGs: R, G, B, then a 4th band) with a 4th class, "hidden" (id 4): one
  // shape per image that only the 4th band shows (bright on a dark band); in RGB it is background.
  // A 4-band model can learn it, an RGB one cannot.
  bool hidden_band = false;

  // The defaults of the small-object variant: 32 training and 8 validation images of 2048 px, the
  // large photos that tiled inference is for (the shapes_small_cpu preset trains on 256 px ones).
  static ShapesOptions small_objects_defaults();
};

// The smallest image side of the small-object variant (its largest shapes are 39 px).
inline constexpr int kMinSmallShapesSize = 128;

// Writes DIR/train/*.png, DIR/train.json, DIR/val/*.png, DIR/val.json (categories 1 square,
// 2 circle, 3 triangle; with hidden_band also 4 hidden). Existing files are overwritten.
void write_shapes_dataset(const std::string& dir, const ShapesOptions& options = {});

}  // namespace mrcnn::data
