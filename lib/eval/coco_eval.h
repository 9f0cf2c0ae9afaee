// COCO evaluation (bbox and segm), the same numbers as pycocotools' COCOeval: evaluate,
// accumulate and summarize with its parameters, matching rules and rounding.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "eval/coco.h"

namespace mrcnn::eval {

enum class IouType { Bbox, Segm };
std::string iou_type_name(IouType type);

// The types that `requested` ("bbox", "segm" or "both") scores these detections by. Box results
// (detections, none with a "segmentation", as a model without masks writes them) are scored by
// bbox only under "both"; under "segm" they are an Error naming source.
std::vector<IouType> iou_types_to_score(const std::string& requested, const std::vector<CocoObject>& detections,
                                        const std::string& source);

struct EvalParams {
  std::vector<double> iou_thresholds;     // .50:.05:.95, as np.linspace computes them
  std::vector<double> recall_thresholds;  // 0:.01:1
  std::vector<int64_t> max_dets{1, 10, 100};
  std::vector<std::array<double, 2>> area_ranges{{0, 1e10}, {0, 1024}, {1024, 9216}, {9216, 1e10}};
  std::vector<std::string> area_labels{"all", "small", "medium", "large"};
  EvalParams();
};

struct EvalResult {
  IouType type = IouType::Bbox;
  EvalParams params;
  std::vector<int64_t> category_ids;  // sorted
  // precision[t][r][k][a][m] and recall[t][k][a][m], -1 where undefined, flattened C-order.
  std::vector<double> precision, recall;
  // AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
  std::array<double, 12> stats{};

  double precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const;
  // AP of one category over IoU .50:.95, all areas, maxDets[2] detections (-1 without ground truth).
  double category_ap(size_t k) const;
};

// The most detections per image pycocotools scores (its maxDets[2]); crowded images need more.
inline constexpr int64_t kDefaultMaxDetections = 100;
inline constexpr int64_t kMaxMaxDetections = 100000;

// threads: 0 = all cores. max_detections: maxDets = [1, 10, max_detections], every line of the
// summary but AR1 and AR10 at the last (AP too, where pycocotools' summarize prints -1 unless it is 100).
EvalResult evaluate(const CocoGroundTruth& gt, const std::vector<CocoObject>& detections, IouType type,
                    int threads = 0, int64_t max_detections = kDefaultMaxDetections);

// The 12 lines pycocotools' summarize() prints.
std::string summary_text(const EvalResult& result);

// The stats as {"AP": ..., "AP50": ..., ...}.
Json stats_json(const EvalResult& result);

}  // namespace mrcnn::eval
