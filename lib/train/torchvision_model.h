// torchvision's Mask R-CNN (model.arch torchvision) as the trainer drives it: the module built from
// model.*, seeded, with its initial weights (train.init_weights or --init-weights: the class and
// RPN predictors start fresh where num_classes or the anchors differ, RGB filters adapted to
// model.input_channels).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/json_file.h"
#include "model/settings.h"
#include "train/trainable_model.h"

namespace mrcnn::train {

// init_weights: empty for none (or when resuming: the checkpoint replaces them). The module stays
// on the CPU in float32, NCHW; the trainer moves it.
std::unique_ptr<TrainableModel> make_torchvision_model(const model::ModelSettings& settings,
                                                       const std::string& init_weights);

// The loader's check of a training image's size: an image too elongated for the model is a bad
// image (skipped or named), not a failed step.
std::function<void(int64_t, int64_t)> torchvision_image_size_check(const model::ModelSettings& settings);

}  // namespace mrcnn::train
