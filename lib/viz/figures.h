// What mrcnn-visualize draws from the toolkit's files: ground truth and detections on their
// images, ground truth next to predictions with matches, misses and false positives marked,
// training curves from metrics.jsonl, and precision-recall curves from a COCO evaluation.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/label_map.h"
#include "eval/coco.h"
#include "eval/coco_eval.h"
#include "io/json_file.h"
#include "eval/instances.h"
#include "viz/overlay.h"

namespace mrcnn::viz {

// COCO objects (ground truth or detections of one image) as drawable instances; masks are
// rasterised at the image size (objects without a segmentation get none). Ground truth gets score 1.
std::vector<eval::Instance> instances_of(const std::vector<const eval::CocoObject*>& objects,
                                          const eval::CocoGroundTruth& gt, bool ground_truth);

// Detections of a COCO results file by image, without ground truth: keyed by image_id, and by
// file_name (as mrcnn-infer writes it) when the records carry one. Records need bbox, score,
// category_id; masks come from a compressed-RLE segmentation.
struct ResultsByImage {
  std::map<int64_t, std::vector<eval::Instance>> by_id;
  std::map<std::string, int64_t> id_of_file;  // file_name (and its basename) -> image_id
  int64_t records = 0;
};
ResultsByImage read_results(const std::string& path);

// Ground truth drawn like detections (tags without scores); crowd regions hatched.
cv::Mat draw_ground_truth(const cv::Mat& rgb, const std::vector<const eval::CocoObject*>& objects,
                          const eval::CocoGroundTruth& gt, const data::LabelMap& labels, OverlayStyle style);

struct Comparison {
  cv::Mat image;  // ground truth | predictions, with a caption strip above
  int matched = 0, false_positives = 0, missed = 0;
};

// Detections at or above style.score_threshold matched to ground truth of their class, greedily
// by score, at IoU >= iou_threshold (masks when both have them, else boxes); crowd regions are
// neither missed nor a false positive's cause. Matched boxes are outlined green, false positives
// red, missed ground truth orange.
Comparison compare(const cv::Mat& rgb, const std::vector<const eval::CocoObject*>& truth,
                   const std::vector<const eval::CocoObject*>& detections, const eval::CocoGroundTruth& gt,
                   const data::LabelMap& labels, const OverlayStyle& style, double iou_threshold = 0.5);

struct CurvesFigure {
  cv::Mat image;
  int64_t records = 0, skipped_lines = 0;
};

// Loss terms (log scale), learning rate, and val AP/AP50 (bbox, segm) against step, one panel each.
CurvesFigure training_curves(const std::string& metrics_path);

// Precision against recall at IoU 0.5 and 0.75 (all areas, 100 detections): overall (mean over
// categories with ground truth) and per category.
cv::Mat precision_recall_curves(const eval::EvalResult& result, const eval::CocoGroundTruth& gt);

}  // namespace mrcnn::viz
