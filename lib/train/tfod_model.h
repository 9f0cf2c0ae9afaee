// The TF OD API's Faster / Mask R-CNN (model.arch tf_faster_rcnn) as the trainer drives it: the
// training forward pass and the five loss terms of FasterRCNNMetaArch.loss on groundtruth framed
// as the OD API's input pipeline frames it, weights from a fine_tune_checkpoint of type detection,
// classification or full, and what the trainer offers that this family does not (refused by name).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/json_file.h"
#include "train/settings.h"
#include "train/trainable_model.h"

namespace mrcnn::train {

// Throws one Error naming the key when the run asks for what the family does not train with:
// train.amp, train.dtype float64, train.channels_last on, several processes (processes), a CUDA
// device (not yet run on a GPU: its samplers draw from a CPU generator), a batch of more than one
// image whose sizes may differ (keep_aspect_ratio without pad_to_max_dimension).
void check_tfod_training(const Json& config, const TrainSettings& settings, int64_t processes, bool cuda);

// The loader's check of a training image's size, as torchvision_image_size_check: an image the
// resizer leaves a side of 0 pixels (model::tfod_check_image_size) is a bad image, skipped or named.
std::function<void(int64_t, int64_t)> tfod_image_size_check(const Json& config);

// The model of model.tf.*, seeded by the caller, with init_weights (empty: none, or resuming)
// loaded as model.tf.fine_tune_checkpoint_type says: a TF checkpoint or our weights file; the log
// names every layer that starts fresh. On the CPU in float32; the trainer moves it.
std::unique_ptr<TrainableModel> make_tfod_model(const Json& config, const std::string& init_weights);

}  // namespace mrcnn::train
