// Run-length encoded binary masks, bit-compatible with pycocotools (column-major runs that start
// with a run of zeros; the compressed "counts" string of its maskApi.c).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mrcnn::eval {

// The largest mask made from user input (height x width pixels): run lengths, polygon crossings and
// IoU sums then stay in 32 bits, as pycocotools keeps them.
inline constexpr int64_t kMaxMaskPixels = (int64_t{1} << 31) - 1;

// Polygon coordinates beyond this (in pixels, either sign) are refused: pycocotools' 5x upsampled
// integer outline overflows near 4.3e8, and no image is that large.
inline constexpr double kMaxPolygonCoordinate = 1e8;

struct Rle {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint32_t> counts;  // alternating runs of 0s and 1s in column-major order, 0s first

  int64_t area() const;                 // number of 1 pixels
  std::array<double, 4> bbox() const;   // [x, y, w, h] of the 1 pixels, as pycocotools' toBbox (0s if empty)
};

// Throws Error unless height > 0, width > 0 and height * width <= kMaxMaskPixels.
void check_mask_size(int64_t height, int64_t width);

// An RLE from run lengths a user gave (uncompressed COCO counts): throws Error unless the size
// passes check_mask_size and the runs sum exactly to height * width, which the later steps rely on.
Rle rle_from_counts(std::vector<uint32_t> counts, int64_t height, int64_t width);
// The same checks without making the mask.
void check_rle_counts(const std::vector<uint32_t>& counts, int64_t height, int64_t width);

// mask: height x width bytes, row-major (as images are stored); nonzero = 1.
Rle encode_rle(const uint8_t* mask, int64_t height, int64_t width);

// A mask that is zero except for a crop_h x crop_w row-major block whose top-left pixel is at
// (x0, y0); the block must lie inside the image. Encodes without building the full mask.
Rle encode_rle_block(int64_t height, int64_t width, int64_t x0, int64_t y0, const uint8_t* block, int64_t block_h,
                     int64_t block_w);

// The mask placed into a larger height x width image with its top-left pixel at (x0, y0) (a tile's
// detection in the whole image's pixels); the mask must lie inside. Never builds either mask.
Rle place_rle(const Rle& mask, int64_t height, int64_t width, int64_t x0, int64_t y0);

// The mask's 1 pixels inside the rectangle of columns x0..x0+w-1 and rows y0..y0+h-1, counted on
// the runs (cost: the runs and the rectangle's columns they cross).
int64_t rle_area_in_rect(const Rle& mask, int64_t x0, int64_t y0, int64_t w, int64_t h);

// Row-major height x width bytes (0 or 1).
std::vector<uint8_t> decode_rle(const Rle& rle);

// The w x h block of the mask whose top-left pixel is (x0, y0), row-major bytes (0 or 1; pixels
// outside the mask are 0). Cost: the runs and the block, never the whole mask (overlays of huge images).
std::vector<uint8_t> decode_rle_crop(const Rle& rle, int64_t x0, int64_t y0, int64_t w, int64_t h);

// pycocotools' compressed counts string (rleToString) and back (rleFrString); the string is
// checked as rle_from_counts checks runs (Error saying what is wrong).
std::string rle_to_string(const Rle& rle);
Rle rle_from_string(const std::string& counts, int64_t height, int64_t width);
// rle_from_string's checks without making the mask.
void check_rle_string(const std::string& counts, int64_t height, int64_t width);

// Throws Error unless every coordinate of the polygon is finite and within kMaxPolygonCoordinate.
void check_polygon(const std::vector<double>& xy);

// A polygon [x0, y0, x1, y1, ...] rasterised as pycocotools' rleFrPoly does (5x upsampled
// boundary, then the column crossings), in an image of height x width. Edges far outside the image
// cost time and memory in proportion to the image, not the edge. Checks as check_polygon.
Rle rle_from_polygon(const std::vector<double>& xy, int64_t height, int64_t width);

// Union (or intersection) of masks of one size, as pycocotools' rleMerge; an empty list gives
// an empty 0x0 mask, masks of different sizes give an empty 0x0 mask too (as pycocotools). Runs
// that do not sum to height * width end the merge early instead of looping.
Rle rle_merge(const std::vector<Rle>& masks, bool intersect = false);

// IoU of every detection with every ground truth, (dts x gts) row-major, as pycocotools' iou():
// for a crowd ground truth the union is the detection's own area. Masks of other sizes give -1.
// Never throws (it runs on worker threads); inconsistent runs end the count early.
using Box = std::array<double, 4>;  // x, y, w, h
std::vector<double> box_iou_matrix(const std::vector<Box>& dts, const std::vector<Box>& gts,
                                   const std::vector<uint8_t>& gt_crowd);
std::vector<double> rle_iou_matrix(const std::vector<const Rle*>& dts, const std::vector<const Rle*>& gts,
                                   const std::vector<uint8_t>& gt_crowd);

}  // namespace mrcnn::eval
