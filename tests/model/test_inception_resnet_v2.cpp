// The TF OD API's Inception-ResNet-v2 (lib/model/inception_resnet_v2): TF's SAME padding (the odd
// pixel at the bottom/right, not PyTorch's symmetric padding), the batch norm without gamma and
// its epsilon, the max pool's padding, output stride 16 and the stages' shapes, TF tensors as
// libtorch tensors. The numbers against TensorFlow itself: tests/reference/test_inception_parity.py.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "model/inception_resnet_v2.h"
#include "model/tf_weights.h"

using namespace mrcnn::model;

namespace {

at::Tensor parameter(torch::nn::Module& module, const std::string& name) {
  for (const auto& item : module.named_parameters())
    if (item.key() == name) return item.value();
  for (const auto& item : module.named_buffers())
    if (item.key() == name) return item.value();
  FAIL("no tensor " << name);
  return {};
}

// Norm statistics away from the identity (variances in [0.5, 1.5), means in [-0.1, 1.5)), so that
// folding them into the convolutions changes the weights.
void spread_norm_statistics(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_buffers())
    item.value().uniform_(item.key().find("variance") != std::string::npos ? 0.5 : -0.1, 1.5);
}

}  // namespace

TEST_CASE("a stride-2 3x3 conv2d_bn pads SAME with the extra pixel at the bottom/right", "[model][inception]") {
  TfConvBn unit(1, 1, 3, 3, 2);
  torch::NoGradGuard no_grad;
  parameter(*unit, "weight").fill_(1.0);
  parameter(*unit, "beta").fill_(0.5);
  parameter(*unit, "moving_mean").fill_(1.0);
  parameter(*unit, "moving_variance").fill_(3.0);
  // 4x4 ones: TF pads (0, 1) per axis, so the first window holds 9 pixels and the last 4.
  const at::Tensor out = unit(torch::ones({1, 1, 4, 4}));
  const double scale = 1.0 / std::sqrt(3.0 + 1e-3);  // no gamma; TF's epsilon 0.001
  const at::Tensor sums = torch::tensor({9.0, 6.0, 6.0, 4.0}).reshape({1, 1, 2, 2});
  const at::Tensor expected = (sums - 1.0) * scale + 0.5;
  CHECK(torch::allclose(out, expected.to(torch::kFloat), 1e-6, 1e-6));
  // An odd size pads (1, 1): the same as PyTorch's symmetric padding.
  const at::Tensor odd = unit(torch::ones({1, 1, 5, 5}));
  CHECK(odd.sizes() == at::IntArrayRef({1, 1, 3, 3}));
  CHECK(odd[0][0][0][0].item<double>() == Approx((4.0 - 1.0) * scale + 0.5));
}

TEST_CASE("both stages: output stride 16 with TF's rounding, 1088 and 1536 channels", "[model][inception]") {
  InceptionResnetV2FirstStage first;
  InceptionResnetV2SecondStage second;
  first->eval();
  second->eval();
  c10::InferenceMode guard;
  // ceil(size / 16) per axis, as TF's SAME (Keras' VALID would give 18x18 at 320).
  CHECK(first(torch::randn({1, 3, 65, 47})).sizes() == at::IntArrayRef({1, 1088, 5, 3}));
  // The box classifier's 17x17 crops become 9x9.
  CHECK(second(torch::randn({2, 1088, 17, 17})).sizes() == at::IntArrayRef({2, 1536, 9, 9}));
}

TEST_CASE("folding the norms and residual scales keeps the first stage's output", "[model][inception]") {
  torch::manual_seed(3);
  InceptionResnetV2FirstStage first;
  spread_norm_statistics(*first);
  first->eval();
  // In float64: the folded and unfolded convolutions take different kernels on different CPUs,
  // whose float32 rounding through ~140 layers no fixed bound covers; in float64 it stays ~1e-12.
  first->to(torch::kDouble);
  c10::InferenceMode guard;
  const at::Tensor x = torch::rand({1, 3, 97, 97}, torch::kDouble) * 2 - 1;
  const at::Tensor before = first(x);
  first->fold_for_inference();
  const at::Tensor after = first(x);
  CHECK(torch::allclose(after, before, 1e-9, 1e-9));
  CHECK(before.abs().max().item<double>() > 0.1);  // not a comparison of zeros
  // The folded module still moves and casts as a whole.
  first->to(torch::kFloat);
  CHECK(first(x.to(torch::kFloat)).scalar_type() == torch::kFloat);
}

TEST_CASE("folding keeps the second stage's output, block8_10's unrectified sum included", "[model][inception]") {
  torch::manual_seed(4);
  InceptionResnetV2SecondStage second;
  spread_norm_statistics(*second);
  second->eval();
  second->to(torch::kDouble);  // float64, as the first stage's test
  c10::InferenceMode guard;
  const at::Tensor crops = torch::rand({2, 1088, 17, 17}, torch::kDouble) * 2 - 1;
  const at::Tensor before = second(crops);
  second->fold_for_inference();
  const at::Tensor after = second(crops);
  CHECK(torch::allclose(after, before, 1e-9, 1e-9));
  CHECK(before.abs().max().item<double>() > 0.1);
  CHECK(crops.abs().max().item<double>() <= 1.0);  // the input is left as it was
}

TEST_CASE("inception preprocessing maps [0, 255] to [-1, 1]", "[model][inception]") {
  const at::Tensor out = inception_preprocess(torch::tensor({0.0f, 127.5f, 255.0f}));
  CHECK(out[0].item<float>() == -1.0f);
  CHECK(out[1].item<float>() == Approx(0.0).margin(1e-6));
  CHECK(out[2].item<float>() == Approx(1.0).margin(1e-6));
}

TEST_CASE("TF checkpoint tensors become libtorch tensors of the same dtype and bytes", "[model][inception]") {
  mrcnn::tf::Tensor half{mrcnn::tf::kHalf, {2}, std::string("\x00\x3c\x00\xc0", 4), {}};  // 1.0, -2.0
  const at::Tensor h = tf_tensor_to_torch(half, "h");
  CHECK(h.scalar_type() == at::kHalf);
  CHECK(h.to(torch::kFloat).equal(torch::tensor({1.0f, -2.0f})));
  mrcnn::tf::Tensor bf{mrcnn::tf::kBfloat16, {1, 1}, std::string("\x80\x3f", 2), {}};  // 1.0
  CHECK(tf_tensor_to_torch(bf, "b").to(torch::kFloat).item<float>() == 1.0f);
  mrcnn::tf::Tensor flags{mrcnn::tf::kBool, {3}, std::string("\x01\x00\x01", 3), {}};
  CHECK(tf_tensor_to_torch(flags, "f").equal(torch::tensor({true, false, true})));
  mrcnn::tf::Tensor strings{mrcnn::tf::kString, {1}, "", {"x"}};
  CHECK_THROWS_WITH(tf_tensor_to_torch(strings, "names"), Catch::Contains("tensor 'names': string"));
  mrcnn::tf::Tensor short_bytes{mrcnn::tf::kFloat, {2}, std::string(4, '\0'), {}};
  CHECK_THROWS_AS(tf_tensor_to_torch(short_bytes, "s"), mrcnn::Error);
}
