// The synthetic "shapes" data set: squares, circles and triangles of random colour, size and
// overlap on a noisy background, written as COCO (PNG images + JSON with RLE masks). Deterministic
// for a seed; the tiny preset, the tests and the demo train on it.
#pragma once

#include <cstdint>
#include <string>

namespace mrcnn::data {

struct ShapesOptions {
  int train_images = 1000;  // synthetic data is free: enough that the tiny preset does not overfit
  int val_images = 50;
  int image_size = 128;
  uint64_t seed = 7;
};

// Writes DIR/train/*.png, DIR/train.json, DIR/val/*.png, DIR/val.json (categories 1 square,
// 2 circle, 3 triangle). Existing files are overwritten.
void write_shapes_dataset(const std::string& dir, const ShapesOptions& options = {});

}  // namespace mrcnn::data
