#include "model/inception_resnet_v2.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace mrcnn::model {

namespace {

constexpr double kBatchNormEpsilon = 1e-3;  // the OD API's default_batchnorm_epsilon

// TF's SAME padding along one dimension as (before, after): the output is ceil(size / stride) and
// an odd total puts the extra pixel after (bottom/right), where PyTorch's padding is symmetric.
std::pair<int64_t, int64_t> same_padding(int64_t size, int64_t kernel, int64_t stride) {
  const int64_t out = (size + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - size, 0);
  return {total / 2, total - total / 2};
}

// x padded as SAME needs for a kernel/stride window, with `value`; returns the padding left for the op
// (symmetric padding stays implicit in the op, which is cheaper than a padded copy).
std::pair<at::Tensor, std::vector<int64_t>> pad_same(const at::Tensor& x, int64_t kernel_h, int64_t kernel_w,
                                                     int64_t stride, double value) {
  const auto [top, bottom] = same_padding(x.size(2), kernel_h, stride);
  const auto [left, right] = same_padding(x.size(3), kernel_w, stride);
  if (top == bottom && left == right) return {x, {top, left}};
  return {at::constant_pad_nd(x, {left, right, top, bottom}, value), {0, 0}};
}

at::Tensor max_pool_3x3_stride2_same(const at::Tensor& x) {
  // Padding never wins a max: TF pads with -inf.
  const auto [padded, padding] = pad_same(x, 3, 3, 2, -std::numeric_limits<double>::infinity());
  return at::max_pool2d(padded, {3, 3}, {2, 2}, padding);
}

at::Tensor avg_pool_3x3_stride1_same(const at::Tensor& x) {
  // TF's average pool divides by the pixels inside the image (count_include_pad false).
  return at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false);
}

at::Tensor conv_same(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride) {
  const auto [padded, padding] = pad_same(x, weight.size(2), weight.size(3), stride, 0.0);
  return at::conv2d(padded, weight, bias, {stride, stride}, padding);
}

}  // namespace

at::Tensor inception_preprocess(const at::Tensor& pixels) {
  // The extractor's (2.0 / 255.0) * x - 1.0, the constant rounded to float32 as TF does.
  return pixels * static_cast<double>(static_cast<float>(2.0 / 255.0)) - 1.0;
}

TfConvBnImpl::TfConvBnImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                           int64_t stride)
    : stride_(stride) {
  weight_ = register_parameter("weight", torch::empty({out_channels, in_channels, kernel_h, kernel_w}));
  torch::nn::init::kaiming_uniform_(weight_, std::sqrt(5.0));
  beta_ = register_parameter("beta", torch::zeros({out_channels}));
  moving_mean_ = register_buffer("moving_mean", torch::zeros({out_channels}));
  moving_variance_ = register_buffer("moving_variance", torch::ones({out_channels}));
}

at::Tensor TfConvBnImpl::forward(const at::Tensor& x) {
  if (folded_) return conv_same(x, weight_, beta_, stride_).relu_();
  // TF's frozen batch norm: y = x · rsqrt(var + eps) + (beta − mean · rsqrt(var + eps)).
  const at::Tensor scale = (moving_variance_ + kBatchNormEpsilon).rsqrt();
  const at::Tensor shift = beta_ - moving_mean_ * scale;
  const at::Tensor y = conv_same(x, weight_, {}, stride_);
  return at::relu(y * scale.reshape({1, -1, 1, 1}) + shift.reshape({1, -1, 1, 1}));
}

void TfConvBnImpl::fold_batch_norm() {
  torch::NoGradGuard no_grad;
  if (folded_) return;
  const at::Tensor scale = (moving_variance_ + kBatchNormEpsilon).rsqrt();
  weight_.mul_(scale.reshape({-1, 1, 1, 1}));
  beta_.sub_(moving_mean_ * scale);
  moving_mean_.zero_();
  moving_variance_.fill_(1.0 - kBatchNormEpsilon);
  folded_ = true;
}

InceptionMixedImpl::InceptionMixedImpl(int64_t in_channels, std::vector<BranchSpec> branches)
    : specs_(std::move(branches)) {
  for (size_t b = 0; b < specs_.size(); ++b) {
    std::vector<TfConvBn> units;
    int64_t channels = in_channels;
    for (size_t u = 0; u < specs_[b].convs.size(); ++u) {
      const ConvSpec& c = specs_[b].convs[u];
      units.push_back(register_module("branch_" + std::to_string(b) + "_" + std::to_string(u),
                                      TfConvBn(channels, c.out_channels, c.kernel_h, c.kernel_w, c.stride)));
      channels = c.out_channels;
    }
    out_channels_ += channels;
    branches_.push_back(std::move(units));
  }
}

at::Tensor InceptionMixedImpl::forward(const at::Tensor& x) {
  std::vector<at::Tensor> outputs;
  for (size_t b = 0; b < branches_.size(); ++b) {
    at::Tensor y = x;
    if (specs_[b].pool == BranchPool::kMax3x3Stride2) y = max_pool_3x3_stride2_same(y);
    if (specs_[b].pool == BranchPool::kAvg3x3Stride1) y = avg_pool_3x3_stride1_same(y);
    for (auto& unit : branches_[b]) y = unit(y);
    outputs.push_back(y);
  }
  return at::cat(outputs, 1);
}

std::vector<TfConvBn> InceptionMixedImpl::units() const {
  std::vector<TfConvBn> all;
  for (const auto& branch : branches_) all.insert(all.end(), branch.begin(), branch.end());
  return all;
}

void InceptionMixedImpl::fold_batch_norms() {
  for (auto& unit : units()) unit->fold_batch_norm();
}

InceptionResnetBlockImpl::InceptionResnetBlockImpl(int64_t channels, std::vector<BranchSpec> branches, double scale,
                                                   bool relu)
    : scale_(scale), relu_(relu) {
  mixed_ = register_module("mixed", InceptionMixed(channels, std::move(branches)));
  up_weight_ = register_parameter("conv_weight", torch::empty({channels, mixed_->out_channels(), 1, 1}));
  torch::nn::init::kaiming_uniform_(up_weight_, std::sqrt(5.0));
  up_bias_ = register_parameter("conv_bias", torch::zeros({channels}));
}

at::Tensor InceptionResnetBlockImpl::forward(const at::Tensor& x) {
  if (!scale_folded_) {
    // Keras' CustomScaleLayer: inputs[0] + inputs[1] * scale, here in one pass (add's alpha).
    at::Tensor y = at::add(x, at::conv2d(mixed_(x), up_weight_, up_bias_), scale_);
    return relu_ ? at::relu_(y) : y;
  }
  // The scale is inside up: x added into up's fresh output, with the ReLU in the same pass on the
  // CPU (ATen's fused add-ReLU), which saves a pass over the block's largest map and an allocation.
  at::Tensor y = at::conv2d(mixed_(x), up_weight_, up_bias_);
  if (!relu_) return y.add_(x);
  return y.is_cpu() ? at::_add_relu_(y, x) : y.add_(x).relu_();
}

void InceptionResnetBlockImpl::fold_for_inference() {
  mixed_->fold_batch_norms();
  if (scale_folded_) return;
  torch::NoGradGuard no_grad;
  up_weight_.mul_(scale_);
  up_bias_.mul_(scale_);
  scale_folded_ = true;
}

namespace {

BranchSpec convs(std::vector<ConvSpec> list) { return {BranchPool::kNone, std::move(list)}; }

// The Keras code's branches, in its order (which numbers the conv2d_bn units, see tf_weights.h).
std::vector<BranchSpec> mixed_5b_branches() {
  return {convs({{96, 1, 1, 1}}), convs({{48, 1, 1, 1}, {64, 5, 5, 1}}),
          convs({{64, 1, 1, 1}, {96, 3, 3, 1}, {96, 3, 3, 1}}), {BranchPool::kAvg3x3Stride1, {{64, 1, 1, 1}}}};
}

std::vector<BranchSpec> mixed_6a_branches() {
  return {convs({{384, 3, 3, 2}}), convs({{256, 1, 1, 1}, {256, 3, 3, 1}, {384, 3, 3, 2}}),
          {BranchPool::kMax3x3Stride2, {}}};
}

std::vector<BranchSpec> mixed_7a_branches() {
  return {convs({{256, 1, 1, 1}, {384, 3, 3, 2}}), convs({{256, 1, 1, 1}, {288, 3, 3, 2}}),
          convs({{256, 1, 1, 1}, {288, 3, 3, 1}, {320, 3, 3, 2}}), {BranchPool::kMax3x3Stride2, {}}};
}

std::vector<BranchSpec> block35_branches() {
  return {convs({{32, 1, 1, 1}}), convs({{32, 1, 1, 1}, {32, 3, 3, 1}}),
          convs({{32, 1, 1, 1}, {48, 3, 3, 1}, {64, 3, 3, 1}})};
}

std::vector<BranchSpec> block17_branches() {
  return {convs({{192, 1, 1, 1}}), convs({{128, 1, 1, 1}, {160, 1, 7, 1}, {192, 7, 1, 1}})};
}

std::vector<BranchSpec> block8_branches() {
  return {convs({{192, 1, 1, 1}}), convs({{192, 1, 1, 1}, {224, 1, 3, 1}, {256, 3, 1, 1}})};
}

std::vector<InceptionResnetBlock> add_blocks(torch::nn::Module& owner, const std::string& type, int64_t count,
                                             int64_t channels, const std::vector<BranchSpec>& branches, double scale) {
  std::vector<InceptionResnetBlock> blocks;
  for (int64_t i = 1; i <= count; ++i)
    blocks.push_back(owner.register_module(type + "_" + std::to_string(i),
                                           InceptionResnetBlock(channels, branches, scale, true)));
  return blocks;
}

}  // namespace

InceptionResnetV2FirstStageImpl::InceptionResnetV2FirstStageImpl(int64_t input_channels) {
  // Keras' stem (slim's names): 3x3/2, 3x3, 3x3, max pool, 1x1, 3x3, max pool.
  const std::vector<std::pair<std::string, ConvSpec>> stem = {{"conv2d_1a_3x3", {32, 3, 3, 2}},
                                                              {"conv2d_2a_3x3", {32, 3, 3, 1}},
                                                              {"conv2d_2b_3x3", {64, 3, 3, 1}},
                                                              {"conv2d_3b_1x1", {80, 1, 1, 1}},
                                                              {"conv2d_4a_3x3", {192, 3, 3, 1}}};
  int64_t channels = input_channels;
  for (const auto& [name, c] : stem) {
    stem_.push_back(register_module(name, TfConvBn(channels, c.out_channels, c.kernel_h, c.kernel_w, c.stride)));
    channels = c.out_channels;
  }
  mixed_5b_ = register_module("mixed_5b", InceptionMixed(192, mixed_5b_branches()));
  block35_ = add_blocks(*this, "block35", 10, 320, block35_branches(), 0.17);
  mixed_6a_ = register_module("mixed_6a", InceptionMixed(320, mixed_6a_branches()));
  block17_ = add_blocks(*this, "block17", 20, kOutChannels, block17_branches(), 0.1);
}

at::Tensor InceptionResnetV2FirstStageImpl::forward(const at::Tensor& x) {
  at::Tensor y = stem_[2](stem_[1](stem_[0](x)));
  y = max_pool_3x3_stride2_same(y);
  y = max_pool_3x3_stride2_same(stem_[4](stem_[3](y)));
  y = mixed_5b_(y);
  for (auto& block : block35_) y = block(y);
  y = mixed_6a_(y);
  for (auto& block : block17_) y = block(y);
  return y;
}

void InceptionResnetV2FirstStageImpl::fold_for_inference() {
  for (auto& unit : stem_) unit->fold_batch_norm();
  mixed_5b_->fold_batch_norms();
  mixed_6a_->fold_batch_norms();
  for (auto& block : block35_) block->fold_for_inference();
  for (auto& block : block17_) block->fold_for_inference();
}

InceptionResnetV2SecondStageImpl::InceptionResnetV2SecondStageImpl() {
  mixed_7a_ = register_module("mixed_7a",
                              InceptionMixed(InceptionResnetV2FirstStageImpl::kOutChannels, mixed_7a_branches()));
  // block8_10 has scale 1.0 and no activation (Keras: inception_resnet_block(..., activation=None)).
  block8_ = add_blocks(*this, "block8", 9, 2080, block8_branches(), 0.2);
  block8_.push_back(register_module("block8_10", InceptionResnetBlock(2080, block8_branches(), 1.0, false)));
  conv_7b_ = register_module("conv_7b", TfConvBn(2080, kOutChannels, 1, 1, 1));
}

at::Tensor InceptionResnetV2SecondStageImpl::forward(const at::Tensor& crops) {
  at::Tensor y = mixed_7a_(crops);
  for (auto& block : block8_) y = block(y);
  return conv_7b_(y);
}

void InceptionResnetV2SecondStageImpl::fold_for_inference() {
  mixed_7a_->fold_batch_norms();
  for (auto& block : block8_) block->fold_for_inference();
  conv_7b_->fold_batch_norm();
}

}  // namespace mrcnn::model
