#include "model/mask_rcnn.h"

#include <torch/torch.h>

namespace mrcnn::model {

MaskRcnnImpl::MaskRcnnImpl(const ModelSettings& settings) : settings_(settings), transform_(settings) {
  backbone_ = register_module("backbone", BackboneWithFpn(settings.backbone, settings.frozen_bn_eps));
  rpn_ = register_module("rpn", RegionProposalNetwork(settings, BackboneWithFpnImpl::kOutChannels));
  roi_heads_ = register_module("roi_heads", RoiHeads(settings, BackboneWithFpnImpl::kOutChannels));
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

ImageBatch MaskRcnnImpl::prepare_batch(const std::vector<at::Tensor>& images) const {
  ImageBatch batch = transform_.batch(images);
  if (inference_only_) batch.tensor = batch.tensor.contiguous(at::MemoryFormat::ChannelsLast);
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

}  // namespace mrcnn::model
