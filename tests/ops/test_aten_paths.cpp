// The device-generic ATen paths of ROIAlign and NMS (what CUDA runs) against the CPU kernels,
// run here on CPU tensors.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include "ops/aten/nms_aten.h"
#include "ops/aten/roi_align_aten.h"
#include "ops/cpu/nms_kernel.h"
#include "ops/roi_align.h"

namespace {

torch::Tensor random_rois(int64_t n, int64_t batch, double extent) {
  torch::Tensor rois = torch::rand({n, 5}, torch::kDouble) * extent - extent / 8;
  rois.select(1, 0) = torch::randint(0, batch, {n}).to(torch::kDouble);
  rois.select(1, 3) = rois.select(1, 1) + torch::rand({n}, torch::kDouble) * extent / 2;
  rois.select(1, 4) = rois.select(1, 2) + torch::rand({n}, torch::kDouble) * extent / 2;
  return rois;
}

}  // namespace

TEST_CASE("ATen ROIAlign equals the CPU kernel, forward and backward", "[ops]") {
  torch::manual_seed(11);
  const torch::Tensor input = torch::randn({2, 6, 19, 23}, torch::kDouble);
  const torch::Tensor rois = random_rois(30, 2, 40);
  for (const bool aligned : {false, true})
    for (const int64_t ratio : {0, 2}) {
      INFO("aligned " << aligned << " sampling_ratio " << ratio);
      const torch::Tensor a = input.clone().requires_grad_(true);
      const torch::Tensor b = input.clone().requires_grad_(true);
      const torch::Tensor expected = mrcnn::ops::roi_align(a, rois, 0.5, 7, 6, ratio, aligned);
      const torch::Tensor got = mrcnn::ops::aten::roi_align(b, rois, 0.5, 7, 6, ratio, aligned);
      REQUIRE(got.sizes() == expected.sizes());
      CHECK(torch::allclose(got, expected, 1e-10, 1e-12));
      const torch::Tensor weights = torch::randn_like(expected);
      (expected * weights).sum().backward();
      (got * weights).sum().backward();
      CHECK(torch::allclose(b.grad(), a.grad(), 1e-10, 1e-12));
      CHECK(a.grad().abs().sum().item<double>() > 0);
    }
}

TEST_CASE("ATen NMS keeps exactly what the CPU kernel keeps", "[ops]") {
  torch::manual_seed(12);
  for (const int64_t n : {0, 1, 17, 400}) {
    const torch::Tensor xy = torch::rand({n, 2}) * 100;
    const torch::Tensor boxes = torch::cat({xy, xy + torch::rand({n, 2}) * 40 + 1}, 1);
    const torch::Tensor scores = torch::randint(0, 20, {n}).to(torch::kFloat);  // many ties
    for (const double threshold : {0.3, 0.5, 0.7}) {
      INFO("n " << n << " threshold " << threshold);
      CHECK(torch::equal(mrcnn::ops::aten::nms(boxes, scores, threshold),
                         mrcnn::ops::cpu::nms_kernel(boxes, scores, threshold)));
    }
  }
}
