// The transform at a fixed scale (tiled inference): tiles keep their native size (or the factor
// asked for) instead of being resized to min_size/max_size, and the model's own resize is unchanged.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include "model/transform.h"

using mrcnn::model::ImageSize;
using mrcnn::model::Transform;

TEST_CASE("a fixed scale replaces min_size/max_size; the default resize stays", "[transform][tiling]") {
  mrcnn::model::ModelSettings settings;  // min_size 800, max_size 1333
  const Transform model(settings);
  CHECK(model.resized_size({512, 512}, 800) == ImageSize{800, 800});  // torchvision would upscale a tile
  CHECK(model.resized_size({512, 300}, 800) == ImageSize{1333, 781});
  const Transform native = model.at_fixed_scale(1.0);
  CHECK(native.resized_size({512, 512}, 800) == ImageSize{512, 512});
  CHECK(native.resized_size({512, 300}, 800) == ImageSize{512, 300});
  CHECK(model.at_fixed_scale(0.5).resized_size({512, 301}, 800) == ImageSize{256, 150});
  CHECK(model.at_fixed_scale(0.16).resized_size({2500, 2500}, 800) == ImageSize{400, 400});
  CHECK(model.resized_size({512, 512}, 800) == ImageSize{800, 800});  // the original is untouched
}

TEST_CASE("a batch at native scale keeps each tile's pixels and pads to 32", "[transform][tiling]") {
  mrcnn::model::ModelSettings settings;
  const Transform native = Transform(settings).at_fixed_scale(1.0);
  const torch::Tensor tile = torch::rand({3, 100, 60});
  const mrcnn::model::ImageBatch batch = native.batch({tile});
  CHECK(batch.image_sizes.front() == ImageSize{100, 60});
  CHECK(batch.original_sizes.front() == ImageSize{100, 60});
  CHECK(batch.tensor.sizes() == torch::IntArrayRef{1, 3, 128, 64});
  const torch::Tensor mean = torch::tensor(std::vector<float>(settings.image_mean.begin(), settings.image_mean.end()));
  const torch::Tensor std = torch::tensor(std::vector<float>(settings.image_std.begin(), settings.image_std.end()));
  const torch::Tensor expected = (tile - mean.view({3, 1, 1})) / std.view({3, 1, 1});
  CHECK(torch::allclose(batch.tensor[0].narrow(1, 0, 100).narrow(2, 0, 60), expected, 0, 1e-6));
}
