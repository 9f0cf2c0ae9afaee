// The second stage: box head and predictor over pooled proposals, per-class post-processing,
// and the mask head (torchvision's roi_heads.*).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <array>
#include <vector>

#include "model/box_coder.h"
#include "model/image_batch.h"
#include "model/targets.h"
#include "model/settings.h"

namespace mrcnn::model {

// Detections of one image, in the coordinates of the image the model saw (resized), or of the
// original image after Transform::postprocess.
struct Detections {
  at::Tensor boxes;   // (D, 4) x1, y1, x2, y2
  at::Tensor scores;  // (D,)
  at::Tensor labels;  // (D,) int64, 1..num_classes-1
  at::Tensor masks;   // (D, 1, M, M) probabilities in the box, or (D, 1, H, W) once pasted
};

// fc6 → ReLU → fc7 → ReLU over flattened pooled features.
class TwoMlpHeadImpl : public torch::nn::Module {
 public:
  TwoMlpHeadImpl(int64_t in_features, int64_t representation_size);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Linear fc6_{nullptr}, fc7_{nullptr};
};
TORCH_MODULE(TwoMlpHead);

// Class logits and class-specific box deltas.
class FastRcnnPredictorImpl : public torch::nn::Module {
 public:
  FastRcnnPredictorImpl(int64_t in_features, int64_t num_classes);
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x);

 private:
  torch::nn::Linear cls_score_{nullptr}, bbox_pred_{nullptr};
};
TORCH_MODULE(FastRcnnPredictor);

// Four 3x3 conv + ReLU layers (keys mask_head.N.0.*), then a 2x transposed conv + ReLU and a 1x1
// conv to per-class mask logits (keys mask_predictor.conv5_mask / mask_fcn_logits).
class MaskHeadImpl : public torch::nn::Module {
 public:
  // Four 3x3 convs: in_channels (the FPN's) → channels (torchvision: 256).
  MaskHeadImpl(int64_t in_channels, int64_t channels);
  at::Tensor forward(const at::Tensor& pooled);  // (K, num_classes, 2S, 2S) logits

 private:
  std::vector<torch::nn::Conv2d> convs_;
};
TORCH_MODULE(MaskHead);

class MaskPredictorImpl : public torch::nn::Module {
 public:
  MaskPredictorImpl(int64_t channels, int64_t num_classes);
  at::Tensor forward(const at::Tensor& x);  // (K, num_classes, 2S, 2S)
  // (K, 1, 2S, 2S): only the channel of each ROI's label.
  at::Tensor forward_for_labels(const at::Tensor& x, const at::Tensor& labels);

 private:
  torch::nn::ConvTranspose2d conv5_mask_{nullptr};
  torch::nn::Conv2d mask_fcn_logits_{nullptr};
};
TORCH_MODULE(MaskPredictor);

class RoiHeadsImpl : public torch::nn::Module {
 public:
  RoiHeadsImpl(const ModelSettings& settings, int64_t channels);

  // Inference: proposals per image (resized-image pixels) → detections with box-sized mask probabilities.
  std::vector<Detections> detect(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& proposals,
                                 const std::vector<ImageSize>& image_sizes);

  // The stages, for training and tests.
  // largest_at_least: see BatchShape (the pooling scales follow the largest image).
  at::Tensor box_features(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                          const std::vector<ImageSize>& image_sizes, ImageSize largest_at_least = {0, 0});
  std::pair<at::Tensor, at::Tensor> box_predictions(const at::Tensor& box_features);  // logits, deltas
  at::Tensor mask_logits(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
                         const std::vector<ImageSize>& image_sizes, ImageSize largest_at_least = {0, 0});
  const BoxCoder& box_coder() const { return box_coder_; }

  // Training: samples proposals (ground-truth boxes added) against the targets (each image with
  // its target's seed) and returns the terms {loss_classifier, loss_box_reg} over the sampled
  // proposals and {loss_mask} over the positive ones.
  std::array<LossTerm, 3> losses(const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& proposals,
                                   const std::vector<ImageSize>& image_sizes, const std::vector<Target>& targets,
                                   bool deterministic_sampling, ImageSize largest_at_least = {0, 0});

 private:
  std::vector<Detections> postprocess_boxes(const at::Tensor& class_logits, const at::Tensor& box_regression,
                                            const std::vector<at::Tensor>& proposals,
                                            const std::vector<ImageSize>& image_sizes);

  RoiSettings settings_;
  MaskSettings mask_settings_;
  int64_t mask_pool_size_;
  BoxCoder box_coder_;
  TwoMlpHead box_head_{nullptr};
  FastRcnnPredictor box_predictor_{nullptr};
  MaskHead mask_head_{nullptr};
  MaskPredictor mask_predictor_{nullptr};
};
TORCH_MODULE(RoiHeads);

}  // namespace mrcnn::model
