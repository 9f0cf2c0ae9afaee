// Mask R-CNN: transform → backbone + FPN → RPN → ROI heads → back to image coordinates.
// Parameter names and shapes are torchvision's maskrcnn_resnet50_fpn state-dict keys.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "model/backbone.h"
#include "model/roi_heads.h"
#include "model/rpn.h"
#include "model/settings.h"
#include "model/transform.h"

namespace mrcnn::model {

class MaskRcnnImpl : public torch::nn::Module {
 public:
  explicit MaskRcnnImpl(const ModelSettings& settings);

  // Inference on (3, H, W) RGB images in [0, 1]: detections in original-image pixels with
  // (D, 1, H, W) mask probabilities. Call prepare_for_inference() first.
  std::vector<Detections> detect(const std::vector<at::Tensor>& images);

  // Training losses {loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg, loss_mask}
  // (torchvision's names) for images and their targets in original pixels. deterministic_sampling
  // takes the first positives/negatives instead of random ones (for comparisons).
  std::map<std::string, at::Tensor> losses(const std::vector<at::Tensor>& images, std::vector<Target> targets,
                                           std::mt19937* rng = nullptr, bool deterministic_sampling = false);

  // The same as sums and counts (losses() is sum / count of each), for data-parallel training,
  // which divides by the counts of the whole global batch; global: that batch's shape.
  std::map<std::string, LossTerm> loss_terms(const std::vector<at::Tensor>& images, std::vector<Target> targets,
                                             std::mt19937* rng = nullptr, bool deterministic_sampling = false,
                                             const BatchShape& global = {});

  // The transform's padded batch; channels-last after prepare_for_inference() or
  // use_channels_last(), as the convolution weights then are.
  ImageBatch prepare_batch(const std::vector<at::Tensor>& images) const;
  // The same with another resize (Transform::at_fixed_scale: tiles at their native scale).
  ImageBatch prepare_batch(const std::vector<at::Tensor>& images, const Transform& transform) const;

  // Evaluation mode, no gradients, batch norms folded into the convolutions. After this the
  // module is for inference only (its conv weights no longer match a state dict).
  void prepare_for_inference();
  bool inference_only() const { return inference_only_; }
  // Channels-last convolution weights and batches for training on CPU, where oneDNN's NHWC
  // convolutions are faster (tiny preset: ~15% per step). Values and state dicts are unchanged.
  void use_channels_last();

  const ModelSettings& settings() const { return settings_; }
  const Transform& transform() const { return transform_; }
  BackboneWithFpn& backbone() { return backbone_; }
  RegionProposalNetwork& rpn() { return rpn_; }
  RoiHeads& roi_heads() { return roi_heads_; }

 private:
  ModelSettings settings_;
  Transform transform_;
  BackboneWithFpn backbone_{nullptr};
  RegionProposalNetwork rpn_{nullptr};
  RoiHeads roi_heads_{nullptr};
  bool inference_only_ = false;
  bool channels_last_ = false;
};
TORCH_MODULE(MaskRcnn);

}  // namespace mrcnn::model
