// The TF OD API Faster / Mask R-CNN's forward pass as training runs it (FasterRCNNMetaArch.predict
// with is_training): anchors that leave the input dropped with their RPN outputs, the proposals'
// NMS, a balanced sample of them (second_stage_batch_size, zero-padded) for the box classifier,
// and the mask head on the same sampled features: what model/tfod_losses.h takes.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <vector>

#include "model/tfod_losses.h"

namespace mrcnn::model {

class TfodMaskRcnnImpl;

// The RPN's outputs on the anchors inside the input (B, A', 4), (B, A', 2), (A', 4), and the box
// classifier's on the sampled proposals.
struct TfodTrainingPredictions {
  at::Tensor rpn_box_encodings, rpn_objectness, anchors;
  TfodBoxClassifierBatch box_classifier;
};

// pixels: preprocessed inputs (B, 3, H, W) of one padded size; true_shapes: each image's resized
// (height, width) inside them; groundtruth as the losses take it (absolute in the padded input).
// The model stays in eval mode: the OD API trains with the extractor's batch norms frozen
// (batch_norm_trainable false). The sampled proposals carry no gradient (its stop_gradient).
TfodTrainingPredictions tfod_training_forward(TfodMaskRcnnImpl& model, const at::Tensor& pixels,
                                              const std::vector<std::array<float, 2>>& true_shapes,
                                              const std::vector<TfodGroundtruth>& groundtruth,
                                              const TfodLossSettings& settings,
                                              std::optional<at::Generator> generator = std::nullopt);

}  // namespace mrcnn::model
