// Benchmark: the model's 3x3 stride-1 convolutions (256 -> 256 channels at the FPN levels of an
// 800x1333 image and at 14x14 for the mask head's ROIs; the ResNet-50 body's, 64 to 512
// channels) as oneDNN's direct kernel on channels-last maps, NNPACK's Winograd F(6x6, 3x3) with
// the layout changes it needs, and our F(4x4, 3x3) (ops/winograd_f43.h; the model takes it where
// ops/winograd_conv.h says it pays): best of 5 in ms (0 where NNPACK is missing), and each one's
// largest error against float64. Usage: conv3x3_bench [threads]   (scripts/bench_conv3x3.sh)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "ops/winograd_f43.h"

namespace {

double best_ms(const std::function<at::Tensor()>& run) {
  run();  // warm-up: primitive creation, kernel transforms
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

double max_error(const at::Tensor& ours, const at::Tensor& exact) {
  return (ours.to(at::kDouble) - exact).abs().max().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(argc > 1 ? std::atoi(argv[1]) : 2);
  c10::NoGradGuard no_grad;  // not InferenceMode: winograd_f43 follows its weights by their version counter
  // NNPACK's Winograd F(6x6, 3x3), the model's path until 2026-12-01, computes in NCHW: timed with
  // the two layout changes a channels-last model pays for it. Missing on CPUs without AVX2.
  const bool nnpack_present = at::_nnpack_available();
  std::printf("| map (N x C x H x W, C -> C) | oneDNN direct | NNPACK F(6x6,3x3) with layout changes | "
              "F(4x4,3x3) | error oneDNN / NNPACK / F43 |\n"
              "|---|---|---|---|---|\n");
  const std::vector<std::array<int64_t, 4>> maps = {{1, 256, 200, 336}, {1, 256, 100, 168}, {1, 256, 50, 84},
                                                    {1, 256, 25, 42}, {100, 256, 14, 14}, {20, 256, 14, 14},
                                                    {1, 64, 200, 336}, {1, 128, 100, 168}, {1, 512, 25, 42}};
  for (const auto& [n, c, h, w] : maps) {
    at::manual_seed(0);
    const at::Tensor x = at::randn({n, c, h, w}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor weight = (at::randn({c, c, 3, 3}) * (0.02 * std::sqrt(256.0 / c)))  // the outputs' scale at any c
                                   .contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor bias = at::randn({c});
    const at::Tensor exact = at::conv2d(x.to(at::kDouble), weight.to(at::kDouble), bias.to(at::kDouble), 1, 1);
    const auto direct = [&] { return at::conv2d(x, weight, bias, 1, 1); };
    const auto nnpack = [&] {
      return at::_nnpack_spatial_convolution(x.contiguous(), weight.contiguous(), bias, {1, 1}, {1, 1})
          .contiguous(at::MemoryFormat::ChannelsLast);
    };
    const auto f43 = [&] { return mrcnn::ops::winograd_f43_conv3x3(x, weight, bias); };
    std::printf("| %lld x %lld x %lld x %lld | %.1f ms | %.1f ms | %.1f ms | %.1e / %.1e / %.1e |\n", (long long)n, (long long)c,
                (long long)h, (long long)w, best_ms(direct), nnpack_present ? best_ms(nnpack) : 0.0,
                best_ms(f43), max_error(direct(), exact), nnpack_present ? max_error(nnpack(), exact) : 0.0,
                max_error(f43(), exact));
  }
  return 0;
}
