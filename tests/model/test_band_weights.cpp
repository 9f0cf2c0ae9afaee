// RGB filters fine-tuned onto other band counts (model::rgb_filters_to_bands): an image whose
// bands all hold the same value gives the first convolution the response of the RGB filters on
// that gray image, for 1, 4 and 5 bands; the RGB bands keep their filters' direction.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include "model/weights.h"

using mrcnn::model::rgb_filters_to_bands;

TEST_CASE("adapted first-layer filters keep the activations of a gray image", "[model][bands]") {
  torch::manual_seed(3);
  const at::Tensor rgb = torch::randn({8, 3, 7, 7}, torch::kDouble);
  const at::Tensor gray = torch::rand({1, 1, 20, 20}, torch::kDouble);
  const at::Tensor expected = torch::conv2d(gray.expand({1, 3, 20, 20}), rgb);
  for (const int64_t bands : {1, 2, 4, 5}) {
    INFO(bands << " bands");
    const at::Tensor adapted = rgb_filters_to_bands(rgb, bands);
    REQUIRE(adapted.sizes() == at::IntArrayRef({8, bands, 7, 7}));
    const at::Tensor got = torch::conv2d(gray.expand({1, bands, 20, 20}), adapted);
    if (bands >= 3) CHECK(torch::allclose(got, expected, 1e-12, 1e-12));
    if (bands >= 3) CHECK(torch::equal(adapted.narrow(1, 0, 3), rgb * (3.0 / bands)));
  }
  CHECK(torch::equal(rgb_filters_to_bands(rgb, 1), rgb.sum(1, true)));
  CHECK(torch::allclose(torch::conv2d(gray, rgb_filters_to_bands(rgb, 1)), expected, 1e-12, 1e-12));
}
