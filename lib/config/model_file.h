// The self-contained model file: weights in safetensors with the resolved configuration and the
// class names in its metadata, as training writes it and mrcnn-infer --model reads it.
#pragma once

#include <cstdint>
#include <string>

#include "data/label_map.h"
#include "io/json_file.h"
#include "io/weights_file.h"  // StateDict (ATen's tensor type only)

namespace mrcnn::config {

// A self-contained model (RUN/model.safetensors, RUN/checkpoints/best.safetensors): weights with
// the resolved configuration and the class names in the safetensors metadata.
struct ModelFile {
  Json config;            // checked and resolved like a configuration file
  data::LabelMap labels;  // empty when the training set had no label map
  std::string weights;    // the file itself: its tensors are the weights
};

void write_model_file(const std::string& path, const StateDict& weights, int64_t step, const Json& config,
                      const data::LabelMap& labels);
// Reads and checks a model file's metadata (not its tensors). Throws Error naming the file when it
// is not a self-contained model (plain weights, a checkpoint) or its config or label map is broken.
ModelFile read_model_file(const std::string& path);

}  // namespace mrcnn::config
