// The ResNet body (frozen or trainable batch norm) and the feature pyramid on top of it
// (torchvision's resnet_fpn_backbone: parameters under backbone.body.* and backbone.fpn.*).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <vector>

namespace mrcnn::model {

// How the backbone normalises: frozen (fine-tuning) or trainable (from scratch), and its epsilon.
struct NormSpec {
  double eps = 1e-5;
  bool trainable = false;
};

// The backbone's batch norm. Frozen: fixed statistics and affine terms, all buffers, as
// torchvision's FrozenBatchNorm2d (pretrained weights). Trainable: nn.BatchNorm2d, learning
// its affine terms and running statistics (torchvision's choice without pretrained weights);
// the state-dict names are the same. fold_into() moves either into the preceding convolution.
class BatchNorm2dImpl : public torch::nn::Module {
 public:
  BatchNorm2dImpl(int64_t channels, NormSpec spec);
  at::Tensor forward(const at::Tensor& x);
  // This norm applied to conv(x). On CUDA a frozen norm (an affine map) runs folded into the
  // convolution, see folded_conv; elsewhere, and with batch statistics, it follows the convolution.
  at::Tensor after(torch::nn::Conv2dImpl& conv, const at::Tensor& x);
  // The frozen norm folded into conv: the convolution with weight * scale and bias = shift, one
  // pass over the activation instead of three, forward and backward, and under bf16 autocast the
  // activation stays bf16 (x * a float32 scale would widen it to float32).
  at::Tensor folded_conv(torch::nn::Conv2dImpl& conv, const at::Tensor& x) const;
  // conv(x) followed by this == conv'(x) with scaled weights and a bias; afterwards this is identity.
  void fold_into(torch::nn::Conv2dImpl& conv);

 private:
  bool uses_batch_statistics() const;
  // The frozen norm as y = x * scale + shift, per channel.
  std::pair<at::Tensor, at::Tensor> affine() const;

  at::Tensor weight_, bias_, running_mean_, running_var_, batches_tracked_;
  NormSpec spec_;
  bool folded_ = false;
};
TORCH_MODULE(BatchNorm2d);

// BasicBlock (ResNet-18/34) or Bottleneck (ResNet-50/101), stride on the 3x3 conv (ResNet v1.5).
class ResNetBlockImpl : public torch::nn::Module {
 public:
  ResNetBlockImpl(int64_t in_channels, int64_t width, int64_t stride, bool bottleneck, NormSpec norm);
  at::Tensor forward(const at::Tensor& x);
  void fold_batch_norms();

 private:
  bool bottleneck_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(ResNetBlock);

// conv1 → bn1 → relu → maxpool → layer1..4; returns C2..C5.
class ResNetBodyImpl : public torch::nn::Module {
 public:
  // input_channels: the bands of the images conv1 takes (3: RGB).
  ResNetBodyImpl(const std::string& depth, NormSpec norm, int64_t input_channels = 3);
  std::vector<at::Tensor> forward(const at::Tensor& x);
  const std::vector<int64_t>& out_channels() const { return out_channels_; }
  // Freezes conv1 and the stages below the top `trainable_layers` (0..5) as torchvision does.
  void freeze_below(int64_t trainable_layers);
  void fold_batch_norms();

 private:
  torch::nn::Conv2d conv1_{nullptr};
  BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;
  std::vector<int64_t> out_channels_;
};
TORCH_MODULE(ResNetBody);

// Lateral 1x1 and output 3x3 convolutions over C2..C5, top-down nearest upsampling, and the
// extra P6 level (max pool with stride 2 of P5). Returns P2..P6.
class FeaturePyramidImpl : public torch::nn::Module {
 public:
  FeaturePyramidImpl(const std::vector<int64_t>& in_channels, int64_t out_channels);
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& features);

 private:
  torch::nn::ModuleList inner_blocks_, layer_blocks_;
  // A level's 3x3 output convolution (Winograd at inference on large CPU maps).
  at::Tensor layer_output(size_t level, const at::Tensor& inner);

  std::vector<torch::nn::Conv2d> inner_convs_, layer_convs_;
};
TORCH_MODULE(FeaturePyramid);

// backbone.body + backbone.fpn; fpn_channels at every level (torchvision: 256).
class BackboneWithFpnImpl : public torch::nn::Module {
 public:
  BackboneWithFpnImpl(const std::string& depth, NormSpec norm, int64_t fpn_channels = 256, int64_t input_channels = 3);
  std::vector<at::Tensor> forward(const at::Tensor& images);
  ResNetBody& body() { return body_; }

 private:
  ResNetBody body_{nullptr};
  FeaturePyramid fpn_{nullptr};
};
TORCH_MODULE(BackboneWithFpn);

}  // namespace mrcnn::model
