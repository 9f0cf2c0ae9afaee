// The TF OD API's post-processing for one image: batch_multiclass_non_max_suppression's per-image
// work (per-class NMS, sort, clip to the true image window, change of frame, total limit), the
// first stage's proposals and the second stage's detections built on it, the score converter, and
// box masks reframed into the image (ops.reframe_box_masks_to_image_masks).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>

#include "model/tfod_ops.h"
#include "model/tfod_settings.h"

namespace mrcnn::model {

// What multiclass NMS keeps, best first: boxes (M, 4), scores (M), classes (M, int64, 0-based
// without background) and the input rows they came from (M, int64).
struct TfodSelection {
  at::Tensor boxes, scores, classes, rows;
};

// multiclass_non_max_suppression (not padded): boxes (N, q, 4) with q = 1 (shared) or K, scores
// (N, K). Per class TF's NMS on the unclipped boxes (at most max_per_class), all sorted by score,
// clipped to `window` (boxes of zero area dropped), optionally expressed relative to the window
// (change_coordinate_frame), cut to max_total.
TfodSelection tfod_multiclass_nms(const at::Tensor& boxes, const at::Tensor& scores, const TfodNms& nms,
                                  const std::array<float, 4>& window, bool change_coordinate_frame);

// The first stage's proposals of one image: rpn_box_encodings (A, 4) decoded on the anchors (A, 4;
// already clipped to the input), objectness softmax, NMS with the first stage's settings, clipped
// to the true image [0, 0, true_h, true_w]; boxes normalised by the padded input size (padded_h,
// padded_w). Returns (P, 4) normalised proposals (P <= first_stage_max_proposals) and their scores.
TfodSelection tfod_proposals(const at::Tensor& rpn_box_encodings, const at::Tensor& rpn_objectness,
                             const at::Tensor& anchors, const TfodSettings& settings,
                             const std::array<float, 2>& true_shape, const std::array<float, 2>& padded_shape);

// The second stage's score converter on class logits with background (N, K + 1).
at::Tensor tfod_convert_scores(const at::Tensor& logits, TfodScoreConverter converter, float logit_scale);

// The box classifier's detections of one image: refined box encodings (P, q, 4) decoded on the
// absolute proposals (normalised proposals times the padded input size), scores converted, the
// background dropped, NMS relative to the true image window. Boxes come out normalised to the
// true image, classes 0-based; `rows` index the proposals.
TfodSelection tfod_detections(const at::Tensor& refined_box_encodings, const at::Tensor& class_logits,
                              const at::Tensor& proposals, const TfodSettings& settings,
                              const std::array<float, 2>& true_shape, const std::array<float, 2>& padded_shape);

// ops.reframe_box_masks_to_image_masks: box masks (M, h, w) placed into an image of height x width
// through crop_and_resize of each mask on its box's inverse (normalised boxes (M, 4), their sizes
// floored at 1e-4), zero outside. Returns (M, height, width) float.
at::Tensor tfod_reframe_masks(const at::Tensor& box_masks, const at::Tensor& boxes, int64_t height, int64_t width);

// One box mask (h, w) reframed as tfod_reframe_masks does, computed only over the image pixels its
// box covers (its normalised box (4)): the block and its top-left pixel.
CropBlock tfod_reframe_mask_block(const at::Tensor& box_mask, const at::Tensor& box, int64_t height, int64_t width);

}  // namespace mrcnn::model
