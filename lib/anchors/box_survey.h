// What the anchor report measures: the training set's boxes as the RPN sees them (through the
// model's resize, every min_size of the list), each box's best IoU with an anchor set, and those
// counted per size bucket against the RPN's matcher thresholds.
#pragma once

#include <string>
#include <vector>

#include "anchors/anchor_geometry.h"
#include "io/json_file.h"

namespace mrcnn::anchors {

// One ground-truth box resized with its image at one min_size, at its real position in the padded
// image that image alone makes (a batch pads to its largest image, which can move P6's grid).
struct ResizedBox {
  Box box;
  Size2 padded;
};

// data.train's boxes through the model's resize: each box once per entry of model.min_size
// (multi-scale training picks one at random per image, each as likely).
struct BoxSet {
  std::vector<ResizedBox> boxes;
  int64_t images = 0, annotated_boxes = 0;  // as read (annotated_boxes * min_sizes = boxes)
  std::string source;                       // "coco data/train.json", for the report
  std::vector<int64_t> min_sizes;
  int64_t max_size = 0;
};

// Reads data.train of a resolved configuration through the data readers (every format; only
// annotations, no pixels). Throws Error when there is no data.train or it cannot be read.
BoxSet read_training_boxes(const Json& resolved);

// The RPN's matcher: anchors of IoU >= fg are positives, < bg negatives (model.rpn.*_iou_thresh).
struct Thresholds {
  double fg = 0.7, bg = 0.3;
};

// Each box's best IoU with an anchor set, over every level; and over one level only.
std::vector<float> best_ious(const std::vector<ResizedBox>& boxes, const AnchorSet& anchors);
std::vector<float> level_best_ious(const std::vector<ResizedBox>& boxes, const AnchorSet& anchors, size_t level);

// Boxes of one size range after the resize, by area (COCO's small/medium/large) or by the side of
// the square of the same area (sqrt(area) in pixels): lo <= measure < hi. Over (box, min_size)
// pairs: boxes; positive: best IoU >= fg (what the RPN trains on as positives); iou50: best IoU >=
// 0.5; below_bg: best IoU < bg, so that every anchor is a negative for the box and it is matched
// only by the matcher's low-quality rule (its best anchors made positive however poor they are).
struct Bucket {
  std::string name;
  double lo = 0, hi = 0;
  bool by_area = false;
  int64_t boxes = 0, positive = 0, iou50 = 0, below_bg = 0;
};

// COCO small/medium/large, then sqrt(area) <8, 8-16, 16-32, 32-64, 64-128, >=128 px, then all.
std::vector<Bucket> count_buckets(const std::vector<ResizedBox>& boxes, const std::vector<float>& ious,
                                  const Thresholds& thresholds);

// Boxes whose best IoU reaches fg.
int64_t count_positive(const std::vector<float>& ious, const Thresholds& thresholds);

// sqrt(area) and height / width of a box.
double box_side(const Box& b);
double box_aspect_ratio(const Box& b);

}  // namespace mrcnn::anchors
