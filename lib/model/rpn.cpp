#include "model/rpn.h"

#include <torch/torch.h>

#include "losses/losses.h"
#include "ops/boxes.h"
#include "ops/nms.h"
#include "ops/winograd_conv.h"

namespace mrcnn::model {

RpnHeadImpl::RpnHeadImpl(int64_t channels, int64_t anchors_per_location) {
  conv_ = torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1));
  // Named conv.0.0 as torchvision's Sequential(Conv2dNormActivation(conv, relu)).
  conv_wrapper_ = register_module("conv", torch::nn::ModuleList());
  conv_wrapper_->push_back(torch::nn::Sequential(conv_));
  cls_logits_ = register_module("cls_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, anchors_per_location, 1)));
  bbox_pred_ = register_module("bbox_pred", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, anchors_per_location * 4, 1)));
  for (auto* layer : {conv_.get(), cls_logits_.get(), bbox_pred_.get()}) {
    torch::nn::init::normal_(layer->weight, 0, 0.01);
    torch::nn::init::constant_(layer->bias, 0);
  }
}

std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> RpnHeadImpl::forward(
    const std::vector<at::Tensor>& features) {
  std::vector<at::Tensor> logits, deltas;
  for (const auto& feature : features) {
    const at::Tensor t = ops::conv3x3_same(feature, conv_->weight, conv_->bias, ops::Activation::kRelu);
    logits.push_back(cls_logits_(t));
    deltas.push_back(bbox_pred_(t));
  }
  return {logits, deltas};
}

namespace {

// (N, A*C, H, W) → (N, H*W*A, C): location-major, then anchor, as the anchors are ordered.
at::Tensor permute_and_flatten(const at::Tensor& layer, int64_t n, int64_t a, int64_t c, int64_t h, int64_t w) {
  return layer.view({n, a, c, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, c});
}

}  // namespace

RegionProposalNetworkImpl::RegionProposalNetworkImpl(const ModelSettings& settings, int64_t channels)
    : settings_(settings.rpn), anchor_generator_(settings.anchor_sizes, settings.aspect_ratios) {
  head_ = register_module("head", RpnHead(channels, anchor_generator_.anchors_per_location()));
}

RpnOutput RegionProposalNetworkImpl::forward(const ImageBatch& batch, const std::vector<at::Tensor>& features) {
  const auto [logits, deltas] = head_(features);
  const int64_t num_images = batch.tensor.size(0);
  std::vector<std::pair<int64_t, int64_t>> feature_sizes;
  std::vector<int64_t> anchors_per_level;
  std::vector<at::Tensor> flat_logits, flat_deltas;
  for (size_t level = 0; level < logits.size(); ++level) {
    const int64_t a = logits[level].size(1), h = logits[level].size(2), w = logits[level].size(3);
    feature_sizes.emplace_back(h, w);
    anchors_per_level.push_back(a * h * w);
    flat_logits.push_back(permute_and_flatten(logits[level], num_images, a, 1, h, w));
    flat_deltas.push_back(permute_and_flatten(deltas[level], num_images, a, 4, h, w));
  }
  RpnOutput out;
  out.objectness = at::cat(flat_logits, 1).flatten(0, -2);
  out.deltas = at::cat(flat_deltas, 1).flatten(0, -2);
  out.anchors = anchor_generator_.anchors(batch.tensor.size(2), batch.tensor.size(3), feature_sizes,
                                          batch.tensor.options());

  // Proposals never carry gradients (torchvision detaches them too).
  torch::NoGradGuard no_grad;
  const at::Tensor all_anchors = out.anchors.repeat({num_images, 1});
  const at::Tensor proposals = box_coder_.decode(out.deltas.detach(), all_anchors).view({num_images, -1, 4});
  const at::Tensor objectness = out.objectness.detach().reshape({num_images, -1});

  const bool training = is_training();
  const int64_t pre_nms_top_n = training ? settings_.pre_nms_top_n_train : settings_.pre_nms_top_n_test;
  const int64_t post_nms_top_n = training ? settings_.post_nms_top_n_train : settings_.post_nms_top_n_test;

  // The best pre_nms_top_n anchors of each level.
  std::vector<at::Tensor> top_indices, level_ids;
  int64_t offset = 0;
  for (size_t level = 0; level < anchors_per_level.size(); ++level) {
    const int64_t count = anchors_per_level[level];
    const at::Tensor level_scores = objectness.narrow(1, offset, count);
    const int64_t k = std::min(pre_nms_top_n, count);
    const at::Tensor idx = std::get<1>(level_scores.topk(k, 1));
    top_indices.push_back(idx + offset);
    level_ids.push_back(at::full({num_images, k}, static_cast<int64_t>(level), idx.options()));
    offset += count;
  }
  const at::Tensor top = at::cat(top_indices, 1);
  const at::Tensor levels = at::cat(level_ids, 1);
  for (int64_t i = 0; i < num_images; ++i) {
    at::Tensor boxes = proposals[i].index_select(0, top[i]);
    at::Tensor scores = at::sigmoid(objectness[i].index_select(0, top[i]));
    at::Tensor lvl = levels[i];
    boxes = ops::clip_boxes_to_image(boxes, batch.image_sizes[i]);
    // torchvision drops small boxes, then low scores: one mask, one index step.
    at::Tensor keep = at::where(ops::large_enough(boxes, 1e-3).logical_and_(scores >= settings_.score_thresh))[0];
    boxes = boxes.index_select(0, keep);
    scores = scores.index_select(0, keep);
    lvl = lvl.index_select(0, keep);
    keep = ops::batched_nms(boxes, scores, lvl, settings_.nms_thresh);
    keep = keep.narrow(0, 0, std::min<int64_t>(post_nms_top_n, keep.size(0)));
    out.proposals.push_back(boxes.index_select(0, keep));
    out.scores.push_back(scores.index_select(0, keep));
  }
  return out;
}

std::pair<LossTerm, LossTerm> RegionProposalNetworkImpl::losses(const RpnOutput& out,
                                                                const std::vector<at::Tensor>& gt_boxes,
                                                                const std::vector<uint64_t>& seeds,
                                                                bool deterministic_sampling) const {
  const Matcher matcher(settings_.fg_iou_thresh, settings_.bg_iou_thresh, /*allow_low_quality=*/true);
  const BalancedSampler sampler(settings_.batch_size_per_image, settings_.positive_fraction, deterministic_sampling);
  const int64_t per_image = out.anchors.size(0);
  std::vector<at::Tensor> labels, targets, positives, negatives;
  for (size_t i = 0; i < gt_boxes.size(); ++i) {
    at::Tensor image_labels, matched_gt;
    torch::NoGradGuard no_grad;
    if (gt_boxes[i].size(0) == 0) {
      image_labels = torch::zeros({per_image}, out.anchors.options());
      matched_gt = torch::zeros_like(out.anchors);
    } else {
      const at::Tensor matches = matcher(ops::box_iou(gt_boxes[i], out.anchors));
      matched_gt = gt_boxes[i].index_select(0, matches.clamp_min(0));
      image_labels = (matches >= 0).to(out.anchors.scalar_type());
      image_labels.masked_fill_(matches == Matcher::kBelowLow, 0.0);
      image_labels.masked_fill_(matches == Matcher::kBetween, -1.0);
    }
    const auto [pos, neg] = sampler(image_labels, i < seeds.size() && seeds[i] ? derived_seed(seeds[i], 1) : 0);
    positives.push_back(pos + static_cast<int64_t>(i) * per_image);
    negatives.push_back(neg + static_cast<int64_t>(i) * per_image);
    labels.push_back(image_labels);
    targets.push_back(box_coder_.encode(matched_gt, out.anchors));
  }
  const at::Tensor pos = at::cat(positives);
  const at::Tensor sampled = std::get<0>(at::cat({pos, at::cat(negatives)}).sort());
  const at::Tensor all_labels = at::cat(labels);
  const at::Tensor all_targets = at::cat(targets);
  const double count = static_cast<double>(sampled.numel());
  const at::Tensor box_loss =
      losses::smooth_l1_sum(out.deltas.index_select(0, pos), all_targets.index_select(0, pos), 1.0 / 9);
  const at::Tensor objectness_loss =
      at::binary_cross_entropy_with_logits(out.objectness.flatten().index_select(0, sampled),
                                           all_labels.index_select(0, sampled), {}, {}, at::Reduction::Sum);
  return {LossTerm{objectness_loss, count}, LossTerm{box_loss, count}};
}

}  // namespace mrcnn::model
