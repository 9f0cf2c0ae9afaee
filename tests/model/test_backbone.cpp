// Frozen batch norm folded into the preceding convolution (the CUDA path): the same map, forward and backward.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include "model/backbone.h"

using mrcnn::model::BatchNorm2d;
using mrcnn::model::NormSpec;

namespace {

void randomise_statistics(BatchNorm2d& norm) {
  torch::NoGradGuard no_grad;
  for (auto& item : norm->named_buffers()) {
    if (item.key() == "num_batches_tracked") continue;
    item.value().copy_(torch::rand_like(item.value()) + 0.5);
  }
  for (auto& item : norm->named_parameters()) item.value().copy_(torch::rand_like(item.value()) + 0.5);
}

}  // namespace

TEST_CASE("a frozen norm folded into its convolution gives the same values and gradients", "[model]") {
  torch::manual_seed(4);
  for (const bool with_bias : {false, true}) {
    INFO("conv bias " << with_bias);
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(5, 6, 3).stride(2).padding(1).bias(with_bias));
    BatchNorm2d norm(6, NormSpec{1e-5, false});
    conv->to(torch::kDouble);
    norm->to(torch::kDouble);
    randomise_statistics(norm);
    const torch::Tensor x = torch::randn({2, 5, 11, 9}, torch::kDouble);

    const torch::Tensor folded = norm->folded_conv(*conv, x);
    folded.pow(2).sum().backward();
    const torch::Tensor folded_grad = conv->weight.grad().clone();
    conv->weight.mutable_grad().zero_();
    const torch::Tensor unfolded = norm->forward(conv->forward(x));
    unfolded.pow(2).sum().backward();

    CHECK(torch::allclose(folded, unfolded, 1e-10, 1e-12));
    CHECK(torch::allclose(folded_grad, conv->weight.grad(), 1e-10, 1e-12));
    CHECK(norm->named_parameters().size() == 0);  // frozen: weight and bias are buffers
    // On the CPU, after() keeps torchvision's arithmetic: exactly the norm after the convolution.
    CHECK(torch::equal(norm->after(*conv, x), unfolded));
  }
}

TEST_CASE("a trainable norm in training mode normalises with the batch's statistics, not folded", "[model]") {
  torch::manual_seed(6);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 1).bias(false));
  BatchNorm2d norm(4, NormSpec{1e-5, true});
  norm->train();
  const torch::Tensor out = norm->after(*conv, torch::randn({4, 3, 6, 6}) * 3 + 2);
  // Batch statistics: each channel comes out with mean 0 and variance 1.
  CHECK(out.mean({0, 2, 3}).abs().max().item<double>() < 1e-5);
  CHECK((out.var({0, 2, 3}, /*unbiased=*/false) - 1).abs().max().item<double>() < 1e-3);
  CHECK(norm->named_buffers()["num_batches_tracked"].item<int64_t>() == 1);
}
