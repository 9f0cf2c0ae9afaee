// The TF OD API's Faster R-CNN meta-architecture with its mask head (mask_rcnn_box_predictor) on
// the Inception-ResNet-v2 extractor, inference path, one image at a time: resizer and
// preprocessing, the RPN on block17_20_ac, proposals, crop_and_resize + max pool, the box
// classifier (second extractor stage, box and class heads), the detections' NMS, then masks
// computed on the detections' own crops (number_of_stages 3), as FasterRCNNMetaArch does.
#pragma once

#include <torch/nn/module.h>

#include <array>
#include <string>
#include <vector>

#include "model/inception_resnet_v2.h"
#include "model/tfod_postprocess.h"
#include "model/tfod_settings.h"

namespace mrcnn::model {

// An image as the network sees it: preprocessed pixels (1, 3, padded_h, padded_w), the resized
// image's size inside them (true shape) and the padded size, both (height, width).
struct TfodInput {
  at::Tensor pixels;
  std::array<float, 2> true_shape{}, padded_shape{};
};

// The RPN's raw outputs: block17_20_ac (1, 1088, h, w), anchors clipped to the input (A, 4, pixels),
// box encodings (A, 4) and objectness logits with background first (A, 2), in anchor order.
struct TfodRpnOutput {
  at::Tensor features, anchors, box_encodings, objectness;
};

// The box classifier on P boxes: its features (P, 1536, s, s), refined box encodings (P, q, 4),
// class logits with background (P, K + 1).
struct TfodBoxClassifierOutput {
  at::Tensor features, refined_box_encodings, class_logits;
};

// Everything one image goes through, stage by stage.
struct TfodOutputs {
  TfodInput input;
  TfodRpnOutput rpn;
  TfodSelection proposals;  // boxes normalised to the padded input
  TfodBoxClassifierOutput box_classifier;
  TfodSelection detections;  // boxes normalised to the true image, classes 0-based
  at::Tensor mask_logits;    // (M, K or 1, mask_h, mask_w)
  at::Tensor masks;          // (M, mask_h, mask_w): sigmoid of each detection's class
};

// The mask head's conv depth: mask_prediction_conv_depth, or when 0 the OD API's automatic one,
// 2^round((2 log2(feature channels) + 3 log2(classes)) / 5) with Python's round half to even.
int64_t tfod_mask_conv_depth(const TfodSettings& settings, int64_t feature_channels);

class TfodMaskRcnnImpl : public torch::nn::Module {
 public:
  explicit TfodMaskRcnnImpl(TfodSettings settings);

  // Resize (the configured resizer), zero padding at the bottom/right, the extractor's [-1, 1]
  // scaling. image: (1, 3, H, W) float pixels in [0, 255].
  TfodInput preprocess(const at::Tensor& image) const;
  TfodRpnOutput rpn(const at::Tensor& pixels);
  // The box classifier on normalised boxes (P, 4) cropped from block17_20_ac.
  TfodBoxClassifierOutput classify(const at::Tensor& features, const at::Tensor& boxes);
  // Mask logits (M, K or 1, mask_h, mask_w) for normalised boxes (M, 4), from their own crops.
  at::Tensor mask_logits(const at::Tensor& features, const at::Tensor& boxes);
  // The mask head alone on box classifier features (P, 1536, s, s): training predicts the masks
  // of the sampled proposals from the features their box classification used.
  at::Tensor mask_head(const at::Tensor& box_features);
  // All stages on one image (1, 3, H, W) in [0, 255], up to number_of_stages.
  TfodOutputs forward(const at::Tensor& image);

  // For inference: the extractor's batch norms folded into its convolutions and every kernel
  // channels-last (NHWC convolutions are faster on the CPU; the crops come channels-last).
  void prepare_for_inference();

  const TfodSettings& settings() const { return settings_; }
  InceptionResnetV2FirstStage& extractor() { return extractor_; }
  InceptionResnetV2SecondStage& box_extractor() { return box_extractor_; }
  // Names of the mask head's convolutions before the last one (mask_conv_0, ...).
  int64_t mask_conv_layers() const { return static_cast<int64_t>(mask_weights_.size()); }

 private:
  void add_mask_head(int64_t box_features);
  void init_heads();
  at::Tensor box_classifier_features(const at::Tensor& features, const at::Tensor& boxes);

  TfodSettings settings_;
  InceptionResnetV2FirstStage extractor_{nullptr};
  InceptionResnetV2SecondStage box_extractor_{nullptr};
  at::Tensor rpn_conv_weight_, rpn_conv_bias_, rpn_box_weight_, rpn_box_bias_, rpn_class_weight_, rpn_class_bias_;
  at::Tensor box_weight_, box_bias_, class_weight_, class_bias_;
  std::vector<at::Tensor> mask_weights_, mask_biases_;  // mask_conv_0.. then mask_last
};
TORCH_MODULE(TfodMaskRcnn);

}  // namespace mrcnn::model
