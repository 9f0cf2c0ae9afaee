// The RPN's anchors without libtorch, as the model places them: cell anchors rounded as
// torchvision rounds them, the FPN levels' grids over a padded image, the model's resize, and a
// box's best IoU over a whole anchor grid (what the RPN's matcher compares with its thresholds).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace mrcnn::anchors {

// x1, y1, x2, y2 in pixels, float32 as the model holds boxes and anchors.
using Box = std::array<float, 4>;

// An image's height and width in pixels.
struct Size2 {
  int64_t height = 0, width = 0;
  bool operator==(const Size2& o) const { return height == o.height && width == o.width; }
};

// The configured anchors: sizes per FPN level (P2-P6) and aspect ratios (height/width) shared by
// every level; as model.anchor.sizes and model.anchor.aspect_ratios.
struct AnchorSet {
  std::vector<std::vector<int64_t>> sizes;
  std::vector<double> aspect_ratios;

  int64_t per_location() const;
  bool operator==(const AnchorSet& o) const { return sizes == o.sizes && aspect_ratios == o.aspect_ratios; }
};

// The zero-centred anchors of one level, ratio-major as model::AnchorGenerator orders them, in
// float32 and rounded half to even (torch.round).
std::vector<Box> cell_anchors(const std::vector<int64_t>& sizes, const std::vector<double>& aspect_ratios);

// One FPN level's anchor locations over a padded image: rows x columns, `stride` pixels apart.
struct LevelGrid {
  int64_t rows = 0, columns = 0, stride_y = 0, stride_x = 0;
};

// The FPN levels P2-P6 of the ResNet-FPN backbone for a padded image: every stride-2 layer (conv1,
// the max pool, the first block of layers 2-4) makes ceil(n / 2), and P6 max-pools P5 with kernel 1
// and stride 2, so its size is ceil(P5 / 2); the strides are padded size // feature size, as
// torchvision's AnchorGenerator computes them (P6 of an 800-pixel side: 800 // 13 = 61).
std::vector<LevelGrid> level_grids(Size2 padded);

// The model's resize (model::Transform::resized_size): the scale min(min_size / short side,
// max_size / long side) from float32 sides, each side floor(side * scale). Throws Error when a side
// becomes 0 pixels.
Size2 resized_size(Size2 original, int64_t min_size, int64_t max_size);

// A box scaled with its image (model::resize_boxes: float32 ratios of the sizes).
Box resize_box(const Box& box, Size2 from, Size2 to);

// The batch a single image is padded into: each side rounded up to a multiple of size_divisible.
Size2 padded_size(Size2 resized, int64_t size_divisible);

// IoU of two boxes in float32, computed as torchvision's box_iou computes it.
float box_iou(const Box& a, const Box& b);

// The best IoU of `box` with the cell anchors placed at every location of the grid (anchors are not
// cut to the image, as in the RPN's matcher). Exact: along each axis the overlap only shrinks with
// the distance between centres, so only the grid lines nearest the box's centre are compared.
float best_grid_iou(const Box& box, const std::vector<Box>& cell, const LevelGrid& grid);

}  // namespace mrcnn::anchors
