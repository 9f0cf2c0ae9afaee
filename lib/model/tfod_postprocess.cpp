#include "model/tfod_postprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "model/tfod_ops.h"

namespace mrcnn::model {

namespace {

// Rows of every tensor of `s` at `index`.
TfodSelection take(const TfodSelection& s, const at::Tensor& index) {
  return {s.boxes.index_select(0, index), s.scores.index_select(0, index), s.classes.index_select(0, index),
          s.rows.index_select(0, index)};
}

// Each class's NMS on its own boxes, concatenated class after class (the OD API's order).
TfodSelection per_class_nms(const at::Tensor& boxes, const at::Tensor& scores, const TfodNms& nms) {
  const int64_t count = boxes.size(0), classes = scores.size(1);
  std::vector<at::Tensor> kept_boxes, kept_scores, kept_classes, kept_rows;
  for (int64_t k = 0; k < classes; ++k) {
    const at::Tensor class_boxes = boxes.select(1, boxes.size(1) == 1 ? 0 : k);
    const at::Tensor class_scores = scores.select(1, k);
    const at::Tensor rows = tf_non_max_suppression(class_boxes, class_scores, std::min(nms.max_per_class, count),
                                                   nms.iou_threshold, nms.score_threshold)
                                .to(boxes.device());
    kept_boxes.push_back(class_boxes.index_select(0, rows));
    kept_scores.push_back(class_scores.index_select(0, rows));
    kept_classes.push_back(at::full({rows.size(0)}, k, rows.options()));
    kept_rows.push_back(rows);
  }
  return {at::cat(kept_boxes), at::cat(kept_scores), at::cat(kept_classes), at::cat(kept_rows)};
}

}  // namespace

TfodSelection tfod_multiclass_nms(const at::Tensor& boxes, const at::Tensor& scores, const TfodNms& nms,
                                  const std::array<float, 4>& window, bool change_coordinate_frame) {
  if (boxes.dim() != 3 || boxes.size(2) != 4 || scores.dim() != 2 || boxes.size(0) != scores.size(0) ||
      (boxes.size(1) != 1 && boxes.size(1) != scores.size(1)))
    throw Error("multiclass NMS: boxes must be (N, 1 or K, 4) for scores (N, K)");
  TfodSelection all = per_class_nms(boxes, scores, nms);
  // sort_by_field is top_k: descending, ties in input order.
  all = take(all, std::get<1>(at::sort(all.scores, /*stable=*/true, /*dim=*/0, /*descending=*/true)));
  all.boxes = tfod_clip_to_window(all.boxes, window);
  all = take(all, at::nonzero(tfod_box_area(all.boxes) > 0).view(-1));
  if (change_coordinate_frame) {
    const at::Tensor origin = torch::tensor({window[0], window[1], window[0], window[1]}, all.boxes.options());
    all.boxes = tfod_scale_boxes(all.boxes - origin, 1.0f / (window[2] - window[0]), 1.0f / (window[3] - window[1]));
  }
  const int64_t total = std::min(nms.max_total, all.scores.size(0));
  return take(all, at::arange(total, all.rows.options()));
}

TfodSelection tfod_proposals(const at::Tensor& rpn_box_encodings, const at::Tensor& rpn_objectness,
                             const at::Tensor& anchors, const TfodSettings& settings,
                             const std::array<float, 2>& true_shape, const std::array<float, 2>& padded_shape) {
  const at::Tensor boxes = tfod_decode_boxes(rpn_box_encodings, anchors);
  const at::Tensor objectness = at::softmax(rpn_objectness, 1).select(1, 1);
  const TfodNms nms{settings.first_stage_score_threshold, settings.first_stage_iou_threshold,
                    settings.first_stage_max_proposals, settings.first_stage_max_proposals};
  TfodSelection proposals = tfod_multiclass_nms(boxes.unsqueeze(1), objectness.unsqueeze(1), nms,
                                                {0.0f, 0.0f, true_shape[0], true_shape[1]}, false);
  proposals.boxes = tfod_scale_boxes(proposals.boxes, 1.0f / padded_shape[0], 1.0f / padded_shape[1]);
  return proposals;
}

at::Tensor tfod_convert_scores(const at::Tensor& logits, TfodScoreConverter converter, float logit_scale) {
  const at::Tensor scaled = logit_scale == 1.0f ? logits : logits * static_cast<double>(1.0f / logit_scale);
  switch (converter) {
    case TfodScoreConverter::kSoftmax: return at::softmax(scaled, -1);
    case TfodScoreConverter::kSigmoid: return at::sigmoid(scaled);
    case TfodScoreConverter::kIdentity: break;
  }
  return scaled;
}

TfodSelection tfod_detections(const at::Tensor& refined_box_encodings, const at::Tensor& class_logits,
                              const at::Tensor& proposals, const TfodSettings& settings,
                              const std::array<float, 2>& true_shape, const std::array<float, 2>& padded_shape) {
  const int64_t count = refined_box_encodings.size(0), q = refined_box_encodings.size(1);
  const at::Tensor absolute = tfod_scale_boxes(proposals, padded_shape[0], padded_shape[1]);
  const at::Tensor anchors = absolute.unsqueeze(1).expand({count, q, 4}).reshape({-1, 4});
  const at::Tensor boxes = tfod_decode_boxes(refined_box_encodings.reshape({-1, 4}), anchors).view({count, q, 4});
  const at::Tensor scores =
      tfod_convert_scores(class_logits, settings.score_converter, settings.logit_scale).slice(1, 1);
  return tfod_multiclass_nms(boxes, scores, settings.second_stage_nms, {0.0f, 0.0f, true_shape[0], true_shape[1]},
                             true);
}

namespace {

// The unit square in each box's frame (the boxes' inverses), box sizes floored at 1e-4.
at::Tensor inverse_boxes(const at::Tensor& boxes) {
  const at::Tensor min_corner = boxes.slice(1, 0, 2), max_corner = boxes.slice(1, 2, 4);
  const at::Tensor denom = at::clamp_min(max_corner - min_corner, 1e-4);
  return at::cat({(0.0 - min_corner) / denom, (1.0 - min_corner) / denom}, 1);
}

}  // namespace

at::Tensor tfod_reframe_masks(const at::Tensor& box_masks, const at::Tensor& boxes, int64_t height, int64_t width) {
  const int64_t count = box_masks.size(0);
  if (count == 0) return at::zeros({0, height, width}, box_masks.options());
  const at::Tensor index = at::arange(count, boxes.options().dtype(at::kLong));
  return tf_crop_and_resize(box_masks.unsqueeze(1), inverse_boxes(boxes), index, height, width, 0.0)
      .squeeze(1)
      .contiguous();
}

CropBlock tfod_reframe_mask_block(const at::Tensor& box_mask, const at::Tensor& box, int64_t height, int64_t width) {
  CropBlock block =
      tf_crop_and_resize_inside(box_mask.unsqueeze(0), inverse_boxes(box.view({1, 4}))[0], height, width);
  block.values = block.values.squeeze(0);
  return block;
}

}  // namespace mrcnn::model
