#include "model/mask_rcnn.h"

#include <torch/torch.h>

namespace mrcnn::model {

MaskRcnnImpl::MaskRcnnImpl(const ModelSettings& settings) : settings_(settings), transform_(settings) {
  const NormSpec norm = settings.trainable_bn ? NormSpec{1e-5, true} : NormSpec{settings.frozen_bn_eps, false};
  backbone_ = register_module(
      "backbone", BackboneWithFpn(settings.backbone, norm, settings.fpn_channels, settings.input_channels));
  rpn_ = register_module("rpn", RegionProposalNetwork(settings, settings.fpn_channels));
  roi_heads_ = register_module("roi_heads", RoiHeads(settings, settings.fpn_channels));
  backbone_->body()->freeze_below(settings.trainable_backbone_layers);
}

void MaskRcnnImpl::prepare_for_inference() {
  eval();
  for (auto& param : parameters()) param.set_requires_grad(false);
  if (!inference_only_) backbone_->body()->fold_batch_norms();
  // Channels-last convolution weights: oneDNN's CPU convolutions run faster on NHWC activations,
  // and the batch is made NHWC in detect(), so every conv keeps that layout end to end.
  torch::NoGradGuard no_grad;
  for (auto& param : parameters())
    if (param.dim() == 4) param.set_data(param.contiguous(at::MemoryFormat::ChannelsLast));
  inference_only_ = true;
}

void MaskRcnnImpl::use_channels_last() {
  torch::NoGradGuard no_grad;
  for (auto& param : parameters())
    if (param.dim() == 4) param.set_data(param.contiguous(at::MemoryFormat::ChannelsLast));
  channels_last_ = true;
}

ImageBatch MaskRcnnImpl::prepare_batch(const std::vector<at::Tensor>& images) const {
  return prepare_batch(images, transform_);
}

ImageBatch MaskRcnnImpl::prepare_batch(const std::vector<at::Tensor>& images, const Transform& transform) const {
  ImageBatch batch = transform.batch(images);
  // A model trained in float64 (the numerical checks of data-parallel training) sees its
  // validation images in float64 too.
  if (parameters().front().scalar_type() == at::kDouble) batch.tensor = batch.tensor.to(at::kDouble);
  if (inference_only_ || channels_last_) batch.tensor = batch.tensor.contiguous(at::MemoryFormat::ChannelsLast);
  return batch;
}

std::vector<Detections> MaskRcnnImpl::detect(const std::vector<at::Tensor>& images) {
  c10::InferenceMode guard;
  const ImageBatch batch = prepare_batch(images);
  const std::vector<at::Tensor> features = backbone_(batch.tensor);
  const RpnOutput proposals = rpn_(batch, features);
  std::vector<Detections> detections = roi_heads_->detect(features, proposals.proposals, batch.image_sizes);
  transform_.to_original(detections, batch);
  return detections;
}

std::map<std::string, LossTerm> MaskRcnnImpl::loss_terms(const std::vector<at::Tensor>& images,
                                                         std::vector<Target> targets, std::mt19937* rng,
                                                         bool deterministic_sampling, const BatchShape& global) {
  TORCH_CHECK(!inference_only_, "losses(): the model was prepared for inference (batch norms folded)");
  TORCH_CHECK(targets.size() == images.size(), "losses(): one target per image");
  const ImageBatch batch = transform_.batch(images, rng, &targets, global.padded);
  const std::vector<at::Tensor> features = backbone_(
      channels_last_ ? batch.tensor.contiguous(at::MemoryFormat::ChannelsLast) : batch.tensor);
  const RpnOutput proposals = rpn_(batch, features);
  std::vector<at::Tensor> gt_boxes;
  std::vector<uint64_t> seeds;
  for (const auto& t : targets) {
    gt_boxes.push_back(t.boxes);
    seeds.push_back(t.seed);
  }
  const auto [objectness, rpn_box] = rpn_->losses(proposals, gt_boxes, seeds, deterministic_sampling);
  const auto [classifier, box_reg, mask] =
      roi_heads_->losses(features, proposals.proposals, batch.image_sizes, targets, deterministic_sampling, global.largest);
  return {{"loss_objectness", objectness},
          {"loss_rpn_box_reg", rpn_box},
          {"loss_classifier", classifier},
          {"loss_box_reg", box_reg},
          {"loss_mask", mask}};
}

std::map<std::string, at::Tensor> MaskRcnnImpl::losses(const std::vector<at::Tensor>& images,
                                                       std::vector<Target> targets, std::mt19937* rng,
                                                       bool deterministic_sampling) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, term] : loss_terms(images, std::move(targets), rng, deterministic_sampling))
    out[name] = term.sum / std::max(term.count, 1.0);
  return out;
}

}  // namespace mrcnn::model
