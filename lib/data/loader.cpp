#include "data/loader.h"

#include <algorithm>
#include <exception>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "data/transforms.h"

namespace mrcnn::data {

Loader::Loader(std::vector<Sample> samples, DatasetSpec spec, LoaderOptions options)
    : samples_(std::move(samples)), spec_(std::move(spec)), options_(std::move(options)) {
  if (samples_.empty()) throw Error(spec_.annotations + ": no training images left to train on");
}

Loader::~Loader() {
  if (prefetched_.valid()) prefetched_.wait();
}

int64_t Loader::steps_per_epoch() const {
  return (static_cast<int64_t>(samples_.size()) + options_.batch_size - 1) / options_.batch_size;
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(samples_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(options_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  std::shuffle(order.begin(), order.end(), rng);
  if (!options_.aspect_ratio_grouping) return order;
  // Landscape and portrait images in separate batches (less padding), batch order shuffled.
  std::stable_partition(order.begin(), order.end(),
                        [&](int64_t i) { return samples_[i].width >= samples_[i].height; });
  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < order.size(); start += options_.batch_size)
    batches.emplace_back(order.begin() + start,
                         order.begin() + std::min(order.size(), start + static_cast<size_t>(options_.batch_size)));
  std::shuffle(batches.begin(), batches.end(), rng);
  order.clear();
  for (const auto& b : batches) order.insert(order.end(), b.begin(), b.end());
  return order;
}

void check_pixel_limit(const Sample& sample, int64_t max_pixels) {
  if (sample.height <= 0 || sample.width <= 0 || sample.width <= max_pixels / sample.height) return;
  throw Error(sample.image_path + ": image of " + std::to_string(sample.width) + "x" + std::to_string(sample.height) +
              " pixels is larger than the limit of " + std::to_string(max_pixels) +
              " pixels (data.max_image_pixels; a decompression bomb?)");
}

void Loader::check_size(const Sample& sample) const {
  if (!options_.check_image_size) return;
  try {
    options_.check_image_size(sample.image.rows, sample.image.cols);
  } catch (const Error& e) {
    throw Error(sample.image_path + ": " + e.what());
  }
}

std::vector<Sample> Loader::make_batch(int64_t step) {
  const int64_t epoch = step / steps_per_epoch();
  const int64_t first = (step % steps_per_epoch()) * options_.batch_size;
  const std::vector<int64_t> order = epoch_order(epoch);
  const int64_t global_count = std::min<int64_t>(options_.batch_size, static_cast<int64_t>(order.size()) - first);
  const int64_t begin = global_count * options_.shard / options_.shards;
  const int64_t count = global_count * (options_.shard + 1) / options_.shards - begin;
  std::vector<Sample> batch(count);
  std::vector<std::string> errors(count);
  std::vector<std::exception_ptr> bugs(count);
  const auto work = [&](int64_t local) {
    const int64_t k = begin + local;  // the position in the global batch decides the augmentation
    Sample s = samples_[order[first + k]];
    s.batch_position = k;
    // Each sample's augmentation draws from its own stream: the same in every run and thread.
    std::mt19937_64 rng(options_.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(step * 131 + k + 1)));
    // An exception must not leave a worker thread (std::terminate): bad data is recorded for the
    // skip/fail policy, anything else is rethrown on the calling thread below.
    try {
      check_pixel_limit(s, options_.max_image_pixels);
      load_pixels(s, spec_);
      augment(s, options_.augmentations, rng);
      check_size(s);
      batch[local] = std::move(s);
    } catch (const Error& e) {
      errors[local] = e.what();
    } catch (const std::bad_alloc&) {
      errors[local] = s.image_path + ": out of memory while decoding the image";
    } catch (...) {
      bugs[local] = std::current_exception();
    }
  };
  if (count == 0) return {};
  const int workers = std::max(1, std::min<int>(options_.workers, static_cast<int>(count)));
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (int64_t k = w; k < count; k += workers) work(k);
    });
  for (int64_t k = 0; k < count; k += workers) work(k);
  for (auto& t : pool) t.join();
  for (const std::exception_ptr& bug : bugs)
    if (bug) std::rethrow_exception(bug);
  std::vector<Sample> kept;
  for (int64_t k = 0; k < count; ++k) {
    if (errors[k].empty()) {
      kept.push_back(std::move(batch[k]));
      continue;
    }
    if (spec_.on_invalid == InvalidPolicy::Fail) throw Error(errors[k] + " (data.on_invalid is fail)");
    log::warn("skipped: {}", errors[k]);
    ++skipped_;
  }
  return kept;
}

std::vector<Sample> Loader::batch(int64_t step) {
  std::vector<Sample> result;
  if (prefetched_.valid() && prefetched_step_ == step)
    result = prefetched_.get();
  else {
    if (prefetched_.valid()) prefetched_.wait();
    result = make_batch(step);
  }
  prefetched_step_ = step + 1;
  prefetched_ = std::async(std::launch::async, [this, step] { return make_batch(step + 1); });
  return result;
}

}  // namespace mrcnn::data
