// Training augmentations, applied to an image and its boxes and masks together: horizontal flip,
// photometric jitter and random crop, from the configuration's data.augmentation list.
#pragma once

#include <random>

#include "data/sample.h"
#include "io/json_file.h"

namespace mrcnn::data {

// Applies each augmentation of the resolved list (data.augmentation) in order, drawing from rng.
// Throws Error for an augmentation this version cannot apply.
void augment(Sample& sample, const Json& augmentations, std::mt19937_64& rng);

void horizontal_flip(Sample& sample);

// Crops to a random window whose sides are [min_scale, max_scale] of the image's and which holds
// at least one instance box whole (50 tries; else the sample is left as it is). Instances keep
// the part of their mask inside the window and are dropped below min_visible of their area.
// The sample's masks must be loaded.
void random_crop(Sample& sample, double min_scale, double max_scale, double min_visible, std::mt19937_64& rng);

}  // namespace mrcnn::data
