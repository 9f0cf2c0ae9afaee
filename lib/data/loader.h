// Batches of training samples: shuffled per epoch with a seed, grouped by aspect ratio, decoded
// and augmented by worker threads while the model trains on the previous batch. The batch of a
// step depends only on (seed, step), so a resumed run sees exactly the data it would have seen.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <vector>

#include "data/datasets.h"
#include "data/sample.h"
#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn::data {

struct LoaderOptions {
  int64_t batch_size = 2;
  int workers = 2;
  uint64_t seed = 42;
  bool aspect_ratio_grouping = true;
  Json augmentations = Json::array();
  // Data-parallel training: batch_size is the global batch, and this process decodes only its
  // part of each one, positions [n * shard / shards, n * (shard + 1) / shards) of its n images.
  int shard = 0;
  int shards = 1;
  // Throws Error for an image size the model cannot take (model::Transform::resized_size: one so
  // elongated that resizing leaves a side of 0 pixels); checked on each decoded, augmented image,
  // so that data.on_invalid skips such an image or names it. Unset: no check.
  std::function<void(int64_t height, int64_t width)> check_image_size;
  // data.max_image_pixels: images whose annotated size has more pixels are refused by name before
  // they are read (see check_pixel_limit), so that data.on_invalid skips them or names them.
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

// Throws Error naming the image when its annotated size (COCO's width and height, a record's
// image/height and image/width, a mask PNG's) has more than max_pixels pixels, before anything is
// decoded. A size that is not known (0) passes; decoding then applies the image reader's limit.
void check_pixel_limit(const Sample& sample, int64_t max_pixels);

class Loader {
 public:
  Loader(std::vector<Sample> samples, DatasetSpec spec, LoaderOptions options);
  ~Loader();

  int64_t steps_per_epoch() const;
  // The batch of a global step (0-based), or this shard's part of it; prefetches the next one in
  // the background.
  std::vector<Sample> batch(int64_t step);
  int64_t skipped_images() const { return skipped_; }

 private:
  std::vector<Sample> make_batch(int64_t step);
  void check_size(const Sample& sample) const;  // options_.check_image_size, naming the image
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  std::vector<Sample> samples_;
  DatasetSpec spec_;
  LoaderOptions options_;
  int64_t prefetched_step_ = -1;
  std::future<std::vector<Sample>> prefetched_;
  std::atomic<int64_t> skipped_{0};
};

}  // namespace mrcnn::data
