// Tiled inference for images larger than the model's input: the grid of overlapping tiles, the
// merge of the detections tile borders cut or duplicate, and one image run tile by tile.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <vector>

#include "eval/instances.h"
#include "io/json_file.h"

namespace mrcnn::infer {

class Detector;

// The smallest tile side the model is given (in its input pixels): the FPN's coarsest level
// (stride 64 after padding to 32) still has a cell.
inline constexpr int64_t kMinTileSize = 32;

// infer.tile.* (or mrcnn-infer's --tile flags).
struct TileOptions {
  int64_t size = 0;              // tile side in image pixels; 0: no tiling
  double overlap = 0.2;          // share of a tile its neighbour covers too, in [0, 0.9]
  bool full_image = false;       // also run the whole image, downscaled as usual, as one more tile
  double scale = 1.0;            // tiles are resized by this (1: native pixels)
  double merge_threshold = 0.5;  // IoU of two masks' parts in the area both regions cover

  bool enabled() const { return size > 0; }
  // Throws Error naming the key or flag whose value is out of range.
  void check() const;
};

// A rectangle of the image: a tile, or (for the full-image pass) the whole image.
struct TileRect {
  int64_t x0 = 0, y0 = 0, width = 0, height = 0;
};

// Where tiles start along one side of length `length`: every tile is `tile` long (the side itself
// when shorter), neighbours overlap by round(tile * overlap), the last one shifted inward to end at
// the edge.
std::vector<int64_t> tile_starts(int64_t length, int64_t tile, double overlap);

// The tiles of a height x width image, row by row.
std::vector<TileRect> tile_grid(int64_t height, int64_t width, const TileOptions& options);

// A detection in image pixels and the region the model saw when it found it (index into regions).
struct RegionDetection {
  eval::Instance instance;
  size_t region = 0;
};

// SAHI's greedy merging, measured where two regions both look: detections by decreasing score;
// each one not yet taken takes every detection of the same class from another region whose mask,
// inside the two regions' common area, overlaps it with an IoU of at least `threshold` (and,
// through those, their matches), at most one detection per region. A merged detection has the
// highest score, and the mask and box (unions) of its best view: the tiles that saw the object
// whole, else the whole-image pass, else all the pieces. When one region is the whole image (the
// full-image pass), a group of tile pieces that still reaches a tile border inside the image is
// dropped: that object is larger than the tiles' overlap and the whole-image pass answers for it.
// At most max_detections are kept, by score.
std::vector<eval::Instance> merge_region_detections(std::vector<RegionDetection> found,
                                                    const std::vector<TileRect>& regions, double threshold,
                                                    size_t max_detections);

// One image's detections, tile by tile (batch_size tiles per forward pass), merged. An image no
// larger than one tile runs whole with the model's own resize, as without tiling.
eval::ImageDetections detect_tiled(Detector& detector, const cv::Mat& image, const TileOptions& options,
                                   float score_threshold, int batch_size);

}  // namespace mrcnn::infer
