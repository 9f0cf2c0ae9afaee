// The data of a training run, read and checked before the first step: the training images (less
// those held out for validation), the validator, the class names, the loader's options.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "data/datasets.h"
#include "data/label_map.h"
#include "data/loader.h"
#include "train/settings.h"

namespace mrcnn::train {

class Validator;

struct TrainingData {
  data::DatasetSpec spec;              // data.train
  std::vector<data::Sample> samples;   // the images to train on (annotations; pixels load later)
  std::unique_ptr<Validator> validator;  // null: no val set and nothing held out
  data::LabelMap labels;               // the class names a model file carries (may be empty)

  TrainingData();
  ~TrainingData();
  TrainingData(TrainingData&&) noexcept;
  TrainingData& operator=(TrainingData&&) noexcept;
};

// data.train read and checked (paths, label map ids against model.num_classes), the held-out
// split of data.val_fraction (the same images for every run of a seed), and the val set.
TrainingData read_training_data(const Json& config, const TrainSettings& settings, int64_t num_classes);

// The loader's options for process `shard` of `shards`; check_image_size: the model family's check
// of a training image's size (an image it cannot take is a bad image, skipped or named), or none.
data::LoaderOptions loader_options(const TrainSettings& settings,
                                   std::function<void(int64_t, int64_t)> check_image_size, int64_t max_image_pixels,
                                   int shard, int shards);

}  // namespace mrcnn::train
