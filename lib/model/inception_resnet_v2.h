// Inception-ResNet-v2 as the TF OD API's faster_rcnn_inception_resnet_v2_keras feature extractor
// builds it: Keras' InceptionResNetV2 with align_feature_maps=True (every VALID padding made TF's
// SAME, which puts an odd extra pixel at the bottom/right), output stride 16, batch norms without
// gamma (epsilon 0.001), residual scales 0.17 / 0.1 / 0.2. The first stage ends at block17_20_ac
// (1088 channels, stride 16, the RPN's features); the second stage (mixed_7a .. conv_7b_ac, 1536
// channels) runs on the boxes' cropped features for the box classifier.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <string>
#include <vector>

namespace mrcnn::model {

// The extractor's preprocessing: pixels in [0, 255] → (2 / 255) · x − 1, in [−1, 1].
at::Tensor inception_preprocess(const at::Tensor& pixels);

// Keras' conv2d_bn: a convolution (no bias) with TF's SAME padding, a frozen batch norm without
// gamma (beta and moving statistics, epsilon 0.001), then ReLU. Parameters (our names): weight
// (OIHW), beta; buffers moving_mean, moving_variance.
class TfConvBnImpl : public torch::nn::Module {
 public:
  TfConvBnImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  // For inference, after the weights are loaded: the norm folded into the convolution (weight ·
  // scale; beta becomes the shift, mean 0 and variance 1 − epsilon, so that the unfolded formula
  // still holds); the tensors stay registered, so .to() moves and casts them.
  void fold_batch_norm();

 private:
  int64_t stride_;
  bool folded_ = false;
  at::Tensor weight_, beta_, moving_mean_, moving_variance_;
};
TORCH_MODULE(TfConvBn);

// What one branch of an Inception module starts with: nothing, a 3x3/2 max pool (SAME, the
// reduction modules) or a 3x3/1 average pool (SAME, padding not counted: mixed_5b).
enum class BranchPool { kNone, kMax3x3Stride2, kAvg3x3Stride1 };

// One conv2d_bn of a branch: output channels, kernel height and width, stride.
struct ConvSpec {
  int64_t out_channels, kernel_h, kernel_w, stride;
};

struct BranchSpec {
  BranchPool pool = BranchPool::kNone;
  std::vector<ConvSpec> convs;
};

// Parallel branches concatenated along the channels (mixed_5b, mixed_6a, mixed_7a and the mixed
// part of each residual block). Submodules branch_<i>_<j>, in Keras' creation order.
class InceptionMixedImpl : public torch::nn::Module {
 public:
  InceptionMixedImpl(int64_t in_channels, std::vector<BranchSpec> branches);
  at::Tensor forward(const at::Tensor& x);
  int64_t out_channels() const { return out_channels_; }
  // The conv2d_bn units in Keras' creation order (branch by branch).
  std::vector<TfConvBn> units() const;
  void fold_batch_norms();

 private:
  std::vector<BranchSpec> specs_;
  std::vector<std::vector<TfConvBn>> branches_;
  int64_t out_channels_ = 0;
};
TORCH_MODULE(InceptionMixed);

// Keras' inception_resnet_block: x + scale · up(mixed(x)), then ReLU unless `relu` is false
// (block8_10). up is a 1x1 convolution with a bias and no norm (Keras' <block>_conv).
class InceptionResnetBlockImpl : public torch::nn::Module {
 public:
  InceptionResnetBlockImpl(int64_t channels, std::vector<BranchSpec> branches, double scale, bool relu);
  at::Tensor forward(const at::Tensor& x);
  InceptionMixed& mixed() { return mixed_; }
  // For inference, after the weights are loaded: the batch norms folded, and the residual scale
  // folded into up (weight and bias times scale), so that the sum and the ReLU take one pass over
  // up's fresh output. up's tensors then no longer equal the checkpoint's: save weights before.
  void fold_for_inference();

 private:
  InceptionMixed mixed_{nullptr};
  at::Tensor up_weight_, up_bias_;
  double scale_;
  bool relu_;
  bool scale_folded_ = false;
};
TORCH_MODULE(InceptionResnetBlock);

// Stem, mixed_5b, block35_1..10, mixed_6a, block17_1..20: preprocessed NCHW images → block17_20_ac.
class InceptionResnetV2FirstStageImpl : public torch::nn::Module {
 public:
  explicit InceptionResnetV2FirstStageImpl(int64_t input_channels = 3);
  at::Tensor forward(const at::Tensor& x);
  static constexpr int64_t kOutChannels = 1088;
  // Every unit's batch norm and every block's residual scale folded (InceptionResnetBlock).
  void fold_for_inference();

 private:
  std::vector<TfConvBn> stem_;
  InceptionMixed mixed_5b_{nullptr}, mixed_6a_{nullptr};
  std::vector<InceptionResnetBlock> block35_, block17_;
};
TORCH_MODULE(InceptionResnetV2FirstStage);

// mixed_7a, block8_1..10, conv_7b: cropped block17_20_ac features (NCHW, 1088 channels) → 1536.
class InceptionResnetV2SecondStageImpl : public torch::nn::Module {
 public:
  InceptionResnetV2SecondStageImpl();
  at::Tensor forward(const at::Tensor& crops);
  static constexpr int64_t kOutChannels = 1536;
  void fold_for_inference();  // as the first stage's

 private:
  InceptionMixed mixed_7a_{nullptr};
  std::vector<InceptionResnetBlock> block8_;
  TfConvBn conv_7b_{nullptr};
};
TORCH_MODULE(InceptionResnetV2SecondStage);

}  // namespace mrcnn::model
