// The region proposal network: a conv head over every FPN level that scores anchors and
// regresses them into proposals (torchvision's rpn.*).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <vector>

#include "model/anchors.h"
#include "model/box_coder.h"
#include "model/image_batch.h"
#include "model/matcher.h"
#include "model/settings.h"
#include "model/targets.h"

namespace mrcnn::model {

// conv 3x3 + ReLU, then 1x1 objectness logits (A) and box deltas (4A) at every location.
class RpnHeadImpl : public torch::nn::Module {
 public:
  RpnHeadImpl(int64_t channels, int64_t anchors_per_location);
  // Per level: (objectness (N, A, H, W), deltas (N, 4A, H, W)).
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> forward(const std::vector<at::Tensor>& features);

 private:
  torch::nn::ModuleList conv_wrapper_{nullptr};
  torch::nn::Conv2d conv_{nullptr}, cls_logits_{nullptr}, bbox_pred_{nullptr};
};
TORCH_MODULE(RpnHead);

// What the RPN computed for a batch: the proposals, and what the losses need.
struct RpnOutput {
  std::vector<at::Tensor> proposals;  // per image (P, 4), in resized-image pixels
  std::vector<at::Tensor> scores;     // per image (P,), objectness probabilities
  at::Tensor objectness;              // (N * anchors, 1) logits, before any selection
  at::Tensor deltas;                  // (N * anchors, 4)
  at::Tensor anchors;                 // (anchors, 4), the same for every image
};

class RegionProposalNetworkImpl : public torch::nn::Module {
 public:
  RegionProposalNetworkImpl(const ModelSettings& settings, int64_t channels);
  RpnOutput forward(const ImageBatch& batch, const std::vector<at::Tensor>& features);

  // (objectness, box regression) loss terms against the ground-truth boxes of each image, both
  // over the sampled anchors. seeds: per image, the seed of its anchor sampling (0: torch's).
  std::pair<LossTerm, LossTerm> losses(const RpnOutput& out, const std::vector<at::Tensor>& gt_boxes,
                                       const std::vector<uint64_t>& seeds, bool deterministic_sampling) const;

 private:
  RpnSettings settings_;
  AnchorGenerator anchor_generator_;
  BoxCoder box_coder_{{1.0, 1.0, 1.0, 1.0}};
  RpnHead head_{nullptr};
};
TORCH_MODULE(RegionProposalNetwork);

}  // namespace mrcnn::model
