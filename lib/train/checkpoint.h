// Everything a run writes to keep its weights: the self-contained model file mrcnn-infer --model reads.
#pragma once

#include <string>

#include "data/label_map.h"
#include "io/json_file.h"

namespace mrcnn::train {

// A self-contained model (RUN/model.safetensors, RUN/checkpoints/best.safetensors): weights with
// the resolved configuration and the class names in the safetensors metadata.
struct ModelFile {
  Json config;             // checked and resolved like a configuration file
  data::LabelMap labels;   // empty when the training set had no label map
  std::string weights;     // the file itself: its tensors are the weights
};

// Reads and checks a model file's metadata (not its tensors). Throws Error naming the file when it
// is not a self-contained model (plain weights, a checkpoint) or its config or label map is broken.
ModelFile read_model_file(const std::string& path);

}  // namespace mrcnn::train
