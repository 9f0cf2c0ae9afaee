// Training augmentations, applied to an image and its boxes and masks together: horizontal flip
// and photometric jitter, from the configuration's data.augmentation list.
#pragma once

#include <random>

#include "data/sample.h"
#include "io/json_file.h"

namespace mrcnn::data {

// Applies each augmentation of the resolved list (data.augmentation) in order, drawing from rng.
// Throws Error for an augmentation this version cannot apply.
void augment(Sample& sample, const Json& augmentations, std::mt19937_64& rng);

void horizontal_flip(Sample& sample);

}  // namespace mrcnn::data
