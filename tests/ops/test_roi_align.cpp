// ROIAlign: forward against a slow bilinear-sampling reference, gradient by finite differences.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "ops/roi_align.h"

namespace {

// Bilinear value of one channel plane at (y, x), torchvision's way: a point more than one pixel
// outside the map is 0; otherwise the point is clamped into [0, H-1] x [0, W-1] and the value is
// the tent-weighted sum over all pixels (weight max(0, 1-|dy|) * max(0, 1-|dx|)).
double sample(const torch::TensorAccessor<double, 2>& plane, int64_t height, int64_t width, double y, double x) {
  if (y < -1.0 || y > height || x < -1.0 || x > width) return 0.0;
  y = std::clamp(y, 0.0, static_cast<double>(height - 1));
  x = std::clamp(x, 0.0, static_cast<double>(width - 1));
  double value = 0.0;
  for (int64_t i = 0; i < height; ++i)
    for (int64_t j = 0; j < width; ++j)
      value += std::max(0.0, 1.0 - std::abs(y - i)) * std::max(0.0, 1.0 - std::abs(x - j)) * plane[i][j];
  return value;
}

// Each output bin is the mean of a grid of bilinear samples at the centres of the grid's cells.
torch::Tensor reference_roi_align(const torch::Tensor& input_any, const torch::Tensor& rois_any, double scale,
                                  int64_t out_h, int64_t out_w, int64_t sampling_ratio, bool aligned) {
  const torch::Tensor input = input_any.to(torch::kDouble).contiguous();
  const torch::Tensor rois = rois_any.to(torch::kDouble).contiguous();
  const int64_t channels = input.size(1), height = input.size(2), width = input.size(3);
  torch::Tensor output = torch::zeros({rois.size(0), channels, out_h, out_w}, torch::kDouble);
  const auto in = input.accessor<double, 4>();
  const auto r = rois.accessor<double, 2>();
  auto out = output.accessor<double, 4>();
  const double offset = aligned ? 0.5 : 0.0;
  for (int64_t k = 0; k < rois.size(0); ++k) {
    const auto batch = static_cast<int64_t>(r[k][0]);
    const double x1 = r[k][1] * scale - offset, y1 = r[k][2] * scale - offset;
    double roi_w = r[k][3] * scale - offset - x1, roi_h = r[k][4] * scale - offset - y1;
    if (!aligned) {
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    const double bin_h = roi_h / out_h, bin_w = roi_w / out_w;
    const int64_t grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(bin_h));
    const int64_t grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(bin_w));
    const double count = std::max<int64_t>(grid_h * grid_w, 1);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t ph = 0; ph < out_h; ++ph)
        for (int64_t pw = 0; pw < out_w; ++pw) {
          double sum = 0.0;
          for (int64_t iy = 0; iy < grid_h; ++iy)
            for (int64_t ix = 0; ix < grid_w; ++ix) {
              const double y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h;
              const double x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w;
              sum += sample(in[batch][c], height, width, y, x);
            }
          out[k][c][ph][pw] = sum / count;
        }
  }
  return output;
}

// K random ROIs (batch index, x1, y1, x2, y2) in image pixels for a 2-image batch whose feature map
// covers (image_h, image_w) pixels; some reach outside the image. Plus fixed special cases.
torch::Tensor random_rois(int64_t k, double image_h, double image_w) {
  const torch::Tensor batch = torch::randint(0, 2, {k, 1}, torch::kLong).to(torch::kDouble);
  const torch::Tensor x1 = torch::rand({k, 1}, torch::kDouble) * (image_w + 12) - 8;
  const torch::Tensor y1 = torch::rand({k, 1}, torch::kDouble) * (image_h + 12) - 8;
  const torch::Tensor w = torch::rand({k, 1}, torch::kDouble) * image_w * 1.2;
  const torch::Tensor h = torch::rand({k, 1}, torch::kDouble) * image_h * 1.2;
  const torch::Tensor special = torch::tensor({{1., 3., 4., 3.6, 4.5},                  // under one feature pixel
                                               {0., 5., 5., 5., 5.},                    // empty box
                                               {1., image_w + 6, 2., image_w + 20, 9.},  // entirely outside
                                               {0., -3., -3., image_w + 3, image_h + 3},  // covers everything
                                               {1., 0., 0., image_w, image_h}},
                                              torch::kDouble);
  return torch::cat({torch::cat({batch, x1, y1, x1 + w, y1 + h}, 1), special}, 0);
}

}  // namespace

TEST_CASE("roi_align forward matches the bilinear-sampling reference", "[ops]") {
  // Feature map 10 x 12 at spatial scale 0.5: an image of 20 x 24 pixels. Output 3 x 4 (not square).
  const int64_t out_h = 3, out_w = 4;
  const double scale = 0.5;
  for (const bool aligned : {false, true}) {
    for (const int64_t sampling_ratio : {0, 2}) {
      for (const torch::Dtype dtype : {torch::kDouble, torch::kFloat}) {
        torch::manual_seed(31 + (aligned ? 2 : 0) + sampling_ratio);
        const torch::Tensor input = torch::randn({2, 3, 10, 12}, torch::kDouble).to(dtype);
        const torch::Tensor rois = random_rois(12, 20, 24).to(dtype);
        const torch::Tensor got = mrcnn::ops::roi_align(input, rois, scale, out_h, out_w, sampling_ratio, aligned);
        const torch::Tensor expected = reference_roi_align(input, rois, scale, out_h, out_w, sampling_ratio, aligned);
        INFO("aligned " << aligned << ", sampling_ratio " << sampling_ratio << ", dtype " << dtype);
        REQUIRE(got.sizes() == torch::IntArrayRef({rois.size(0), 3, out_h, out_w}));
        REQUIRE(got.scalar_type() == dtype);
        const double tolerance = dtype == torch::kDouble ? 1e-12 : 1e-4;
        const double max_error = (got.to(torch::kDouble) - expected).abs().max().item<double>();
        CHECK(max_error < tolerance);
        // The reference is not trivially zero: most ROIs see the image.
        CHECK(expected.abs().sum().item<double>() > 1.0);
      }
    }
  }
}

TEST_CASE("roi_align aligned and sampling_ratio change the result", "[ops]") {
  // Guards against a kernel that ignores either argument (the reference agrees with each setting).
  torch::manual_seed(3);
  const torch::Tensor input = torch::randn({1, 1, 8, 8}, torch::kDouble);
  const torch::Tensor rois = torch::tensor({{0., 1.3, 0.7, 6.1, 5.9}}, torch::kDouble);
  const torch::Tensor a = mrcnn::ops::roi_align(input, rois, 1.0, 2, 2, 2, false);
  const torch::Tensor b = mrcnn::ops::roi_align(input, rois, 1.0, 2, 2, 2, true);
  const torch::Tensor c = mrcnn::ops::roi_align(input, rois, 1.0, 2, 2, 0, false);
  CHECK((a - b).abs().max().item<double>() > 1e-3);
  CHECK((a - c).abs().max().item<double>() > 1e-3);
}

TEST_CASE("roi_align gradient matches central finite differences", "[ops]") {
  const int64_t out_h = 2, out_w = 3;
  const double scale = 0.5, eps = 1e-6;
  for (const bool aligned : {false, true}) {
    for (const int64_t sampling_ratio : {0, 2}) {
      torch::manual_seed(101 + (aligned ? 2 : 0) + sampling_ratio);
      const torch::Tensor input = torch::randn({2, 2, 6, 7}, torch::kDouble);
      const torch::Tensor rois = random_rois(6, 12, 14);
      const torch::Tensor weights = torch::randn({rois.size(0), 2, out_h, out_w}, torch::kDouble);
      const auto loss = [&](const torch::Tensor& x) {
        return (mrcnn::ops::roi_align(x, rois, scale, out_h, out_w, sampling_ratio, aligned) * weights).sum();
      };

      const torch::Tensor x = input.clone().requires_grad_(true);
      loss(x).backward();
      REQUIRE(x.grad().defined());
      const torch::Tensor analytic = x.grad().flatten();

      torch::NoGradGuard no_grad;
      const torch::Tensor flat = input.flatten();
      int64_t nonzero = 0;
      for (int64_t i = 0; i < flat.numel(); ++i) {
        torch::Tensor plus = flat.clone(), minus = flat.clone();
        plus[i] += eps;
        minus[i] -= eps;
        const double numeric =
            (loss(plus.view(input.sizes())).item<double>() - loss(minus.view(input.sizes())).item<double>()) /
            (2 * eps);
        const double got = analytic[i].item<double>();
        INFO("aligned " << aligned << ", sampling_ratio " << sampling_ratio << ", element " << i);
        CHECK(got == Approx(numeric).epsilon(1e-6).margin(1e-8));
        nonzero += std::abs(numeric) > 1e-6 ? 1 : 0;
      }
      CHECK(nonzero > flat.numel() / 2);  // the ROIs cover most of both images
    }
  }
}

TEST_CASE("roi_align with no ROIs", "[ops]") {
  const torch::Tensor input = torch::randn({2, 3, 5, 5}, torch::kDouble).requires_grad_(true);
  const torch::Tensor rois = torch::zeros({0, 5}, torch::kDouble);
  const torch::Tensor out = mrcnn::ops::roi_align(input, rois, 1.0, 7, 7, 2, true);
  CHECK(out.sizes() == torch::IntArrayRef({0, 3, 7, 7}));
  out.sum().backward();
  REQUIRE(input.grad().defined());
  CHECK(input.grad().sizes() == input.sizes());
  CHECK(input.grad().abs().sum().item<double>() == 0.0);
  CHECK_THROWS(mrcnn::ops::roi_align(input, torch::zeros({1, 4}, torch::kDouble), 1.0, 7, 7, 2, true));
}

TEST_CASE("roi_align on a channels-last input equals the NCHW result exactly", "[ops]") {
  torch::manual_seed(5);
  const torch::Tensor input = torch::randn({2, 37, 23, 31});
  torch::Tensor rois = torch::rand({40, 5}) * 40 - 5;
  rois.select(1, 0) = torch::randint(0, 2, {40}).to(torch::kFloat);
  rois.select(1, 3) = rois.select(1, 1) + torch::rand({40}) * 20;
  rois.select(1, 4) = rois.select(1, 2) + torch::rand({40}) * 20;
  for (const bool aligned : {false, true})
    for (const int64_t ratio : {0, 2}) {
      const torch::Tensor nchw = mrcnn::ops::roi_align(input, rois, 0.5, 7, 5, ratio, aligned);
      const torch::Tensor nhwc =
          mrcnn::ops::roi_align(input.contiguous(at::MemoryFormat::ChannelsLast), rois, 0.5, 7, 5, ratio, aligned);
      CHECK(torch::equal(nchw, nhwc));
    }
}

TEST_CASE("roi_align on bf16/fp16 input pools in float32 and returns the input's type", "[ops]") {
  // torchvision's autocast rule: the kernel runs on the input and boxes cast to float32.
  torch::manual_seed(9);
  const torch::Tensor input = torch::randn({2, 8, 20, 24});
  torch::Tensor rois = torch::rand({30, 5}) * 30;
  rois.select(1, 0) = torch::randint(0, 2, {30}).to(torch::kFloat);
  rois.select(1, 3) = rois.select(1, 1) + torch::rand({30}) * 15;
  rois.select(1, 4) = rois.select(1, 2) + torch::rand({30}) * 15;
  for (const auto type : {torch::kBFloat16, torch::kHalf}) {
    INFO("dtype " << type);
    const torch::Tensor reduced = input.to(type).requires_grad_(true);
    // Boxes in float32 with bf16 features, as the pooler of an autocast forward passes them.
    const torch::Tensor out = mrcnn::ops::roi_align(reduced, rois, 0.5, 7, 7, 0, true);
    CHECK(out.scalar_type() == type);
    const torch::Tensor in_float = reduced.detach().to(torch::kFloat).requires_grad_(true);
    const torch::Tensor expected = mrcnn::ops::roi_align(in_float, rois, 0.5, 7, 7, 0, true);
    CHECK(torch::equal(out, expected.to(type)));
    const torch::Tensor upstream = torch::randn(out.sizes());
    out.backward(upstream.to(type));
    expected.backward(upstream.to(type).to(torch::kFloat));
    REQUIRE(reduced.grad().defined());
    CHECK(reduced.grad().scalar_type() == type);
    CHECK(torch::equal(reduced.grad(), in_float.grad().to(type)));
  }
}
