// The Winograd 3x3 convolution (our F(4x4, 3x3), directly and as the model reaches it through
// conv3x3_same) against float64 direct convolution: within a bound written from the operands' magnitudes (CPU-independent), the
// input's memory format kept, and the direct path taken wherever a gradient is needed.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <limits>

#include "ops/winograd_conv.h"
#include "ops/winograd_f43.h"

namespace {

struct Layer {
  torch::Tensor input, weight, bias;
};

// A 64x80 map of 256 channels: at least kWinogradMinPixels and kWinogradMinChannels, so
// conv3x3_same takes the Winograd path.
Layer random_layer(int64_t channels = 256) {
  torch::manual_seed(3);
  return {torch::randn({1, channels, 64, 80}), torch::randn({32, channels, 3, 3}) * 0.1, torch::randn({32})};
}

// For our F(4x4, 3x3): neither side of 61x83 is a multiple of the 4x4 output tile (the ragged last
// row and column of tiles); 72 output channels are more than one 64-channel block of the transforms.
Layer ragged_layer(int64_t images = 1, int64_t height = 61, int64_t width = 83) {
  torch::manual_seed(3);
  return {torch::randn({images, 24, height, width}), torch::randn({72, 24, 3, 3}) * 0.1, torch::randn({72})};
}

// |error| of a float32 3x3 convolution by any algorithm is at most a multiple of float32's epsilon
// times the convolution of the magnitudes: direct kernels stay within ~2 epsilon, Winograd
// F(4x4, 3x3) within ~40 (its transforms' constants grow the rounding); the bound leaves 5x of that.
void check_close_to_float64(const torch::Tensor& ours, const Layer& l) {
  const torch::Tensor exact = at::conv2d(l.input.to(torch::kDouble), l.weight.to(torch::kDouble),
                                         l.bias.to(torch::kDouble), 1, 1);
  const torch::Tensor magnitude = at::conv2d(l.input.abs().to(torch::kDouble), l.weight.abs().to(torch::kDouble),
                                             l.bias.abs().to(torch::kDouble), 1, 1);
  const double epsilon = std::numeric_limits<float>::epsilon();
  const torch::Tensor excess = (ours.to(torch::kDouble) - exact).abs() - magnitude * (200 * epsilon);
  CHECK(excess.max().item<double>() <= 0);
}

}  // namespace

TEST_CASE("conv3x3_same equals a padded 3x3 convolution within float32 rounding", "[ops][winograd]") {
  const Layer l = random_layer();
  torch::NoGradGuard no_grad;
  REQUIRE(mrcnn::ops::winograd_applies(l.input, l.weight));
  const torch::Tensor out = mrcnn::ops::conv3x3_same(l.input, l.weight, l.bias);
  REQUIRE(out.sizes() == torch::IntArrayRef({1, 32, 64, 80}));
  check_close_to_float64(out, l);
}

TEST_CASE("conv3x3_same keeps a channels-last input channels-last", "[ops][winograd]") {
  const Layer l = random_layer();
  torch::NoGradGuard no_grad;
  const torch::Tensor input = l.input.contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor out = mrcnn::ops::conv3x3_same(input, l.weight.contiguous(at::MemoryFormat::ChannelsLast), l.bias);
  CHECK(out.is_contiguous(at::MemoryFormat::ChannelsLast));
  check_close_to_float64(out, l);
}

TEST_CASE("conv3x3_same with a ReLU is the convolution's ReLU, in both memory formats", "[ops][winograd]") {
  const Layer l = random_layer();
  torch::NoGradGuard no_grad;
  for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    const torch::Tensor input = l.input.contiguous(format);
    const torch::Tensor plain = mrcnn::ops::conv3x3_same(input, l.weight, l.bias);
    const torch::Tensor relu = mrcnn::ops::conv3x3_same(input, l.weight, l.bias, mrcnn::ops::Activation::kRelu);
    CHECK(relu.is_contiguous(format));
    CHECK(torch::equal(relu, plain.relu()));
    CHECK(relu.lt(0).sum().item<int64_t>() == 0);
    CHECK(plain.lt(0).sum().item<int64_t>() > 0);  // the ReLU had something to do
  }
}

TEST_CASE("conv3x3_same takes the direct convolution for a weight made in InferenceMode", "[ops][winograd]") {
  const Layer l = random_layer();
  c10::InferenceMode inference;
  const torch::Tensor weight = l.weight.clone();  // an inference tensor: no version counter
  REQUIRE(weight.is_inference());
  CHECK_FALSE(mrcnn::ops::winograd_applies(l.input, weight));
  CHECK(torch::equal(mrcnn::ops::conv3x3_same(l.input, weight, l.bias), at::conv2d(l.input, weight, l.bias, 1, 1)));
}

TEST_CASE("conv3x3_same takes the direct convolution where a gradient is needed", "[ops][winograd]") {
  Layer l = random_layer();
  l.weight.requires_grad_(true);
  CHECK_FALSE(mrcnn::ops::winograd_applies(l.input, l.weight));
  const torch::Tensor out = mrcnn::ops::conv3x3_same(l.input, l.weight, l.bias);
  CHECK(torch::equal(out, at::conv2d(l.input, l.weight, l.bias, 1, 1)));
  out.sum().backward();
  CHECK(l.weight.grad().defined());
}

TEST_CASE("winograd_layout leaves a map that needs a gradient in the graph", "[ops][winograd]") {
  const torch::Tensor x = torch::randn({1, 256, 8, 8}, torch::requires_grad());
  const torch::Tensor y = x * 2;
  const torch::Tensor laid = mrcnn::ops::winograd_layout(y);
  laid.sum().backward();
  REQUIRE(x.grad().defined());
  CHECK(torch::allclose(x.grad(), torch::full_like(x, 2.0)));
  torch::NoGradGuard no_grad;
  CHECK(mrcnn::ops::winograd_layout(y.detach()).is_contiguous(at::MemoryFormat::ChannelsLast));
}

TEST_CASE("conv3x3_same takes the direct convolution on small maps and other types", "[ops][winograd]") {
  torch::NoGradGuard no_grad;
  const torch::Tensor small = torch::randn({1, 8, 16, 16});
  const torch::Tensor weight = torch::randn({8, 8, 3, 3});
  CHECK_FALSE(mrcnn::ops::winograd_applies(small, weight));
  const torch::Tensor few_channels = torch::randn({1, 128, 64, 80});  // a large map, too few channels
  CHECK_FALSE(mrcnn::ops::winograd_applies(few_channels, torch::randn({8, 128, 3, 3})));
  CHECK_FALSE(mrcnn::ops::winograd_applies(torch::randn({1, 8, 64, 80}, torch::kDouble), weight.to(torch::kDouble)));
  CHECK(torch::equal(mrcnn::ops::conv3x3_same(small, weight, {}), at::conv2d(small, weight, {}, 1, 1)));
}

TEST_CASE("winograd_f43_conv3x3 equals a padded 3x3 convolution within float32 rounding", "[ops][winograd]") {
  const Layer l = ragged_layer();
  torch::NoGradGuard no_grad;
  const torch::Tensor out = mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias);
  REQUIRE(out.sizes() == torch::IntArrayRef({1, 72, 61, 83}));
  CHECK(out.is_contiguous(at::MemoryFormat::ChannelsLast));
  check_close_to_float64(out, l);
  check_close_to_float64(
      mrcnn::ops::winograd_f43_conv3x3(l.input.contiguous(at::MemoryFormat::ChannelsLast), l.weight, l.bias), l);
}

TEST_CASE("winograd_f43_conv3x3 on a batch of small maps, as the mask head's ROIs", "[ops][winograd]") {
  const Layer l = ragged_layer(9, 14, 14);
  torch::NoGradGuard no_grad;
  check_close_to_float64(mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias), l);
}

TEST_CASE("winograd_f43_conv3x3 with a ReLU equals the convolution's ReLU", "[ops][winograd]") {
  const Layer l = ragged_layer();
  torch::NoGradGuard no_grad;
  const torch::Tensor plain = mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias);
  const torch::Tensor relu = mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias, true);
  CHECK(torch::equal(relu, plain.relu()));
  CHECK(relu.min().item<float>() == 0);
}

TEST_CASE("winograd_f43_conv3x3 follows a weight changed in place", "[ops][winograd]") {
  // The kernel's transform is kept between calls; an optimiser step (in place, between two
  // validations) must not leave the old one in use.
  Layer l = ragged_layer();
  torch::NoGradGuard no_grad;
  const torch::Tensor before = mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias);
  l.weight.mul_(-2);
  const torch::Tensor after = mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias);
  check_close_to_float64(after, l);
  CHECK_FALSE(torch::allclose(before, after));
}

TEST_CASE("winograd_f43_conv3x3 refuses a gradient, a weight without a version, a wrong bias", "[ops][winograd]") {
  Layer l = ragged_layer();
  l.weight.requires_grad_(true);
  CHECK_THROWS(mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight, l.bias));
  torch::NoGradGuard no_grad;
  CHECK_THROWS(mrcnn::ops::winograd_f43_conv3x3(l.input, l.weight.detach(), l.bias.narrow(0, 0, 8)));
  c10::InferenceMode inference;
  const torch::Tensor inference_weight = torch::randn({72, 24, 3, 3});  // no version counter to follow
  CHECK_THROWS(mrcnn::ops::winograd_f43_conv3x3(l.input, inference_weight, l.bias));
}
