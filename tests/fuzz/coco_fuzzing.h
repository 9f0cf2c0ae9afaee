// What the COCO fuzz targets share: evaluating detections against ground truth the way
// mrcnn-eval does, each IoU type on its own, with one thread.
#pragma once

#include <vector>

#include "eval/coco.h"
#include "eval/coco_eval.h"
#include "fuzzing.h"

namespace mrcnn::fuzz {

// bbox and segm evaluation (summary and stats as printed), each a separate expected-error scope.
inline void evaluate_both(const eval::CocoGroundTruth& gt, const std::vector<eval::CocoObject>& detections) {
  for (const eval::IouType type : {eval::IouType::Bbox, eval::IouType::Segm})
    expect_clean_errors([&] {
      const eval::EvalResult result = eval::evaluate(gt, detections, type, /*threads=*/1);
      (void)eval::summary_text(result);
      (void)eval::stats_json(result).dump();
    });
}

}  // namespace mrcnn::fuzz
