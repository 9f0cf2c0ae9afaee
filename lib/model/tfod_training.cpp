#include "model/tfod_training.h"

#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_ops.h"
#include "model/tfod_targets.h"

namespace mrcnn::model {

namespace {

at::Tensor weights_or_ones(const TfodGroundtruth& gt) {
  return gt.weights.defined() ? gt.weights.to(at::kFloat) : at::ones({gt.boxes.size(0)}, gt.boxes.options());
}

// Rows `rows` of `boxes`, then zero rows up to `size` (box_list_ops.pad_or_clip_box_list).
at::Tensor padded_rows(const at::Tensor& boxes, const at::Tensor& rows, int64_t size) {
  const at::Tensor chosen = boxes.index_select(0, rows.slice(0, 0, size));
  return at::constant_pad_nd(chosen, {0, 0, 0, size - chosen.size(0)}, 0.0);
}

}  // namespace

TfodTrainingPredictions tfod_training_forward(TfodMaskRcnnImpl& model, const at::Tensor& pixels,
                                              const std::vector<std::array<float, 2>>& true_shapes,
                                              const std::vector<TfodGroundtruth>& groundtruth,
                                              const TfodLossSettings& settings,
                                              std::optional<at::Generator> generator) {
  const int64_t images = pixels.size(0), batch = settings.second_stage_batch_size;
  if (static_cast<int64_t>(true_shapes.size()) != images || static_cast<int64_t>(groundtruth.size()) != images)
    throw Error("TF OD API training: " + std::to_string(images) + " image(s) but " + std::to_string(true_shapes.size()) +
                " true shapes and groundtruth for " + std::to_string(groundtruth.size()));
  const TfodSettings& s = model.settings();
  const float height = static_cast<float>(pixels.size(2)), width = static_cast<float>(pixels.size(3));
  std::vector<at::Tensor> encodings, objectness, proposals, counts, refined, logits, masks;
  at::Tensor anchors;
  for (int64_t b = 0; b < images; ++b) {
    const TfodRpnOutput rpn = model.rpn(pixels.narrow(0, b, 1));
    // Training drops the anchors that leave the input (clip_anchors_to_image false); those kept
    // are their clipped selves.
    const at::Tensor raw = tfod_grid_anchors(s.anchors, rpn.features.size(2), rpn.features.size(3));
    const at::Tensor inside = tfod_inside_window(raw, {0.0f, 0.0f, height, width}).to(rpn.anchors.device());
    anchors = rpn.anchors.index({inside});
    encodings.push_back(rpn.box_encodings.index({inside}));
    objectness.push_back(rpn.objectness.index({inside}));
    TfodSelection nms = tfod_proposals(encodings.back(), objectness.back(), anchors, s, true_shapes[b], {height, width});
    nms.boxes = nms.boxes.detach();  // the OD API's stop_gradient: the box classifier's boxes are constants
    const at::Tensor absolute = tfod_scale_boxes(nms.boxes, height, width);
    const TfodGroundtruth& gt = groundtruth[b];
    const at::Tensor rows = tfod_sample_proposals(absolute, absolute.size(0), gt.boxes, gt.classes, weights_or_ones(gt),
                                                  batch, settings.second_stage_balance_fraction, generator);
    const at::Tensor sampled = padded_rows(nms.boxes, rows, batch);
    const TfodBoxClassifierOutput classified = model.classify(rpn.features, sampled);
    refined.push_back(classified.refined_box_encodings);
    logits.push_back(classified.class_logits);
    if (s.predicts_masks()) masks.push_back(model.mask_head(classified.features));
    proposals.push_back(tfod_scale_boxes(sampled, height, width));
    counts.push_back(at::full({1}, std::min<int64_t>(rows.size(0), batch), at::kLong));
  }
  TfodTrainingPredictions out{at::stack(encodings), at::stack(objectness), anchors, {}};
  out.box_classifier = {at::cat(refined), at::cat(logits), at::stack(proposals), at::cat(counts),
                        masks.empty() ? at::Tensor() : at::cat(masks), {height, width}};
  return out;
}

}  // namespace mrcnn::model
