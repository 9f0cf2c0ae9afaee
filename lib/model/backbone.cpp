#include "model/backbone.h"

#include <torch/torch.h>

#include "core/error.h"
#include "ops/winograd_conv.h"

namespace mrcnn::model {
namespace F = torch::nn::functional;

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

}  // namespace

BatchNorm2dImpl::BatchNorm2dImpl(int64_t channels, NormSpec spec) : spec_(spec) {
  if (spec.trainable) {
    weight_ = register_parameter("weight", torch::ones({channels}));
    bias_ = register_parameter("bias", torch::zeros({channels}));
  } else {
    weight_ = register_buffer("weight", torch::ones({channels}));
    bias_ = register_buffer("bias", torch::zeros({channels}));
  }
  running_mean_ = register_buffer("running_mean", torch::zeros({channels}));
  running_var_ = register_buffer("running_var", torch::ones({channels}));
  // nn.BatchNorm2d's counter, so that torchvision's strict load_state_dict accepts our files.
  if (spec.trainable) batches_tracked_ = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

bool BatchNorm2dImpl::uses_batch_statistics() const {
  // A trainable norm in a stage that freeze_below() froze keeps its statistics too.
  return spec_.trainable && is_training() && weight_.requires_grad();
}

std::pair<at::Tensor, at::Tensor> BatchNorm2dImpl::affine() const {
  // torchvision's arithmetic: scale = w * rsqrt(var + eps); shift = b - mean * scale.
  const at::Tensor scale = weight_ * (running_var_ + spec_.eps).rsqrt();
  return {scale, bias_ - running_mean_ * scale};
}

at::Tensor BatchNorm2dImpl::forward(const at::Tensor& x) {
  if (folded_) return x;
  if (uses_batch_statistics()) {
    {
      torch::NoGradGuard no_grad;
      batches_tracked_.add_(1);
    }
    return at::batch_norm(x, weight_, bias_, running_mean_, running_var_, /*training=*/true, /*momentum=*/0.1,
                          spec_.eps, at::globalContext().userEnabledCuDNN());
  }
  const auto [scale, shift] = affine();
  return x * scale.reshape({1, -1, 1, 1}) + shift.reshape({1, -1, 1, 1});
}

at::Tensor BatchNorm2dImpl::after(torch::nn::Conv2dImpl& conv, const at::Tensor& x) {
  // On the CPU the norm keeps torchvision's arithmetic (x * scale + shift after the convolution):
  // the reference path, and the one whose rounding data-parallel runs are checked against.
  if (folded_ || uses_batch_statistics() || !x.is_cuda()) return forward(conv.forward(x));
  return folded_conv(conv, x);
}

at::Tensor BatchNorm2dImpl::folded_conv(torch::nn::Conv2dImpl& conv, const at::Tensor& x) const {
  const auto [scale, shift] = affine();
  const at::Tensor bias = conv.bias.defined() ? conv.bias * scale + shift : shift;
  const auto& o = conv.options;
  return at::conv2d(x, conv.weight * scale.reshape({-1, 1, 1, 1}), bias, *o.stride(),
                    *std::get<torch::ExpandingArray<2>>(o.padding()), *o.dilation(), o.groups());
}

void BatchNorm2dImpl::fold_into(torch::nn::Conv2dImpl& conv) {
  torch::NoGradGuard no_grad;
  const auto [scale, shift] = affine();
  conv.weight.mul_(scale.reshape({-1, 1, 1, 1}));
  // The folded bias is not registered as a parameter: the state dict keeps torchvision's layout.
  conv.bias = conv.bias.defined() ? conv.bias * scale + shift : shift.clone();
  folded_ = true;
}

ResNetBlockImpl::ResNetBlockImpl(int64_t in_channels, int64_t width, int64_t stride, bool bottleneck, NormSpec norm)
    : bottleneck_(bottleneck) {
  const int64_t out_channels = bottleneck ? width * 4 : width;
  if (bottleneck) {
    conv1_ = register_module("conv1", conv(in_channels, width, 1, 1, 0, false));
    bn1_ = register_module("bn1", BatchNorm2d(width, norm));
    conv2_ = register_module("conv2", conv(width, width, 3, stride, 1, false));
    bn2_ = register_module("bn2", BatchNorm2d(width, norm));
    conv3_ = register_module("conv3", conv(width, out_channels, 1, 1, 0, false));
    bn3_ = register_module("bn3", BatchNorm2d(out_channels, norm));
  } else {
    conv1_ = register_module("conv1", conv(in_channels, width, 3, stride, 1, false));
    bn1_ = register_module("bn1", BatchNorm2d(width, norm));
    conv2_ = register_module("conv2", conv(width, width, 3, 1, 1, false));
    bn2_ = register_module("bn2", BatchNorm2d(width, norm));
  }
  if (stride != 1 || in_channels != out_channels) {
    downsample_ = register_module(
        "downsample", torch::nn::Sequential(conv(in_channels, out_channels, 1, stride, 0, false),
                                            BatchNorm2d(out_channels, norm)));
  }
}

at::Tensor ResNetBlockImpl::forward(const at::Tensor& x) {
  // In-place ReLUs: each conv output is a fresh tensor, and a second buffer per layer costs time.
  at::Tensor out = bn1_->after(*conv1_, x).relu_();
  if (bottleneck_) {
    out = bn2_->after(*conv2_, out).relu_();
    out = bn3_->after(*conv3_, out);
  } else {
    out = bn2_->after(*conv2_, out);
  }
  const at::Tensor identity =
      downsample_ ? downsample_[1]->as<BatchNorm2dImpl>()->after(*downsample_[0]->as<torch::nn::Conv2dImpl>(), x)
                  : x;
  return torch::relu_(out.add_(identity));
}

void ResNetBlockImpl::fold_batch_norms() {
  bn1_->fold_into(*conv1_);
  bn2_->fold_into(*conv2_);
  if (bottleneck_) bn3_->fold_into(*conv3_);
  if (downsample_)
    downsample_[1]->as<BatchNorm2dImpl>()->fold_into(*downsample_[0]->as<torch::nn::Conv2dImpl>());
}

ResNetBodyImpl::ResNetBodyImpl(const std::string& depth, NormSpec norm, int64_t input_channels) {
  std::vector<int64_t> blocks;
  bool bottleneck = true;
  if (depth == "resnet18") {
    blocks = {2, 2, 2, 2};
    bottleneck = false;
  } else if (depth == "resnet34") {
    blocks = {3, 4, 6, 3};
    bottleneck = false;
  } else if (depth == "resnet50") {
    blocks = {3, 4, 6, 3};
  } else if (depth == "resnet101") {
    blocks = {3, 4, 23, 3};
  } else {
    throw Error("model.backbone: unknown backbone '" + depth + "', expected resnet18, resnet34, resnet50 or resnet101");
  }
  conv1_ = register_module("conv1", conv(input_channels, 64, 7, 2, 3, false));
  bn1_ = register_module("bn1", BatchNorm2d(64, norm));
  int64_t in_channels = 64;
  for (size_t stage = 0; stage < 4; ++stage) {
    const int64_t width = 64 << stage;
    torch::nn::Sequential layer;
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      const int64_t stride = (b == 0 && stage > 0) ? 2 : 1;
      layer->push_back(ResNetBlock(in_channels, width, stride, bottleneck, norm));
      in_channels = bottleneck ? width * 4 : width;
    }
    layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    out_channels_.push_back(in_channels);
  }
  // torchvision's ResNet initialisation; it matters only when training from scratch.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false))
    if (auto* c = module->as<torch::nn::Conv2dImpl>())
      torch::nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
}

std::vector<at::Tensor> ResNetBodyImpl::forward(const at::Tensor& x) {
  at::Tensor out = bn1_->after(*conv1_, x).relu_();
  out = torch::max_pool2d(out, 3, 2, 1);
  std::vector<at::Tensor> features;
  for (auto& layer : layers_) {
    out = layer->forward(out);
    features.push_back(out);
  }
  return features;
}

void ResNetBodyImpl::freeze_below(int64_t trainable_layers) {
  // torchvision: layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
  const std::vector<std::string> order = {"layer4", "layer3", "layer2", "layer1", "conv1"};
  std::vector<std::string> trainable(order.begin(), order.begin() + trainable_layers);
  if (trainable_layers == 5) trainable.push_back("bn1");
  for (auto& item : named_parameters()) {
    bool train = false;
    for (const auto& prefix : trainable) train = train || item.key().rfind(prefix, 0) == 0;
    item.value().set_requires_grad(train);
  }
}

void ResNetBodyImpl::fold_batch_norms() {
  bn1_->fold_into(*conv1_);
  for (auto& layer : layers_)
    for (auto& block : *layer) block.get<ResNetBlockImpl>().fold_batch_norms();
}

FeaturePyramidImpl::FeaturePyramidImpl(const std::vector<int64_t>& in_channels, int64_t out_channels) {
  inner_blocks_ = register_module("inner_blocks", torch::nn::ModuleList());
  layer_blocks_ = register_module("layer_blocks", torch::nn::ModuleList());
  for (const int64_t in : in_channels) {
    // Each conv sits at index 0 of a Sequential, as torchvision's Conv2dNormActivation wrapper.
    auto inner = conv(in, out_channels, 1, 1, 0, true);
    auto layer = conv(out_channels, out_channels, 3, 1, 1, true);
    torch::nn::init::kaiming_uniform_(inner->weight, 1);
    torch::nn::init::constant_(inner->bias, 0);
    torch::nn::init::kaiming_uniform_(layer->weight, 1);
    torch::nn::init::constant_(layer->bias, 0);
    inner_blocks_->push_back(torch::nn::Sequential(inner));
    layer_blocks_->push_back(torch::nn::Sequential(layer));
    inner_convs_.push_back(inner);
    layer_convs_.push_back(layer);
  }
}

at::Tensor FeaturePyramidImpl::layer_output(size_t level, const at::Tensor& inner) {
  const torch::nn::Conv2dImpl& layer = *layer_convs_[level];
  return ops::conv3x3_same(inner, layer.weight, layer.bias);
}

std::vector<at::Tensor> FeaturePyramidImpl::forward(const std::vector<at::Tensor>& features) {
  const size_t levels = features.size();
  std::vector<at::Tensor> results(levels);
  at::Tensor last_inner = inner_convs_[levels - 1](features[levels - 1]);
  results[levels - 1] = layer_output(levels - 1, last_inner);
  for (int64_t idx = static_cast<int64_t>(levels) - 2; idx >= 0; --idx) {
    const at::Tensor lateral = inner_convs_[idx](features[idx]);
    const at::Tensor top_down = F::interpolate(
        last_inner, F::InterpolateFuncOptions()
                        .size(std::vector<int64_t>{lateral.size(-2), lateral.size(-1)})
                        .mode(torch::kNearest));
    last_inner = lateral + top_down;
    results[idx] = layer_output(idx, last_inner);
  }
  results.push_back(torch::max_pool2d(results.back(), 1, 2, 0));  // P6 ("pool")
  return results;
}

BackboneWithFpnImpl::BackboneWithFpnImpl(const std::string& depth, NormSpec norm, int64_t fpn_channels,
                                         int64_t input_channels) {
  body_ = register_module("body", ResNetBody(depth, norm, input_channels));
  fpn_ = register_module("fpn", FeaturePyramid(body_->out_channels(), fpn_channels));
}

std::vector<at::Tensor> BackboneWithFpnImpl::forward(const at::Tensor& images) { return fpn_(body_(images)); }

}  // namespace mrcnn::model
