// A model's results on a configuration's val set from mrcnn-infer run as a child process, for
// mrcnn-eval --config: the evaluator never loads libtorch nor OpenCV, and starts in milliseconds.
#pragma once

#include <memory>
#include <string>

#include "core/temp_folder.h"

namespace mrcnn::infer {

struct ValSetResults {
  std::string ground_truth;  // data.val's COCO file, or a COCO document written from its samples
  std::string detections;    // mrcnn-infer's COCO results
  // Holds what this evaluation wrote for itself (in $TMPDIR); gone with it, or on a fatal signal.
  std::unique_ptr<TemporaryFolder> folder;
  // The two files as messages name them: by the user's inputs, not by temporary paths that are gone
  // by the time the user reads the message ("the detections of W on C's data.val").
  std::string ground_truth_name, detections_name;
  // eval.iou_types as mrcnn-eval's --iou-type takes it: "bbox", "segm" or "both".
  std::string iou_type = "both";
};

// message with the temporary files' paths replaced by their names above.
std::string with_user_names(std::string message, const ValSetResults& results);

// Runs mrcnn-infer (beside this executable) with the weights over the val set of the
// configuration file (eval.batch_size; device: eval.device unless given), every detection kept.
// Sets in other formats than COCO get their ground truth as a COCO document with the ids mrcnn-infer
// --dataset gives their images, written by mrcnn-config export-coco (also a child, so that this
// process links no image codecs). Throws Error when data.val names no annotations, ReportedFailure
// when a child fails (it printed the error line); nothing it wrote is left behind then.
ValSetResults infer_val_set(const std::string& config_path, const std::string& weights, const std::string& device);

}  // namespace mrcnn::infer
