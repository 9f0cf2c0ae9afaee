// A model family as the trainer drives it (model.arch): its module, the images it takes, the loss
// terms of a batch and detections for validation; one implementation per family, so that the
// step, the hooks, checkpoints and validation stay the same for torchvision's and the TF OD API's.
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eval/instances.h"
#include "model/image_batch.h"
#include "model/targets.h"

namespace torch::nn {
class Module;
}

namespace mrcnn::train {

class TrainableModel {
 public:
  virtual ~TrainableModel() = default;

  // Parameters, buffers and the state dict: the optimiser, checkpoints, broadcasts.
  virtual torch::nn::Module& module() = 0;
  // Training mode as the family trains (the TF OD API's extractor trains with frozen norms).
  virtual void train() = 0;
  // Convolution weights (and the batch) channels-last, where the family supports it.
  virtual void use_channels_last() = 0;
  // A staged image's (H, W, C) host pixels as the model takes them, on the device in dtype.
  virtual at::Tensor image(const at::Tensor& pixels, const torch::Device& device, at::ScalarType dtype) const = 0;
  // The padded size of a batch of images of these sizes (data-parallel: every process pads alike).
  virtual model::BatchShape batch_shape(const std::vector<model::ImageSize>& sizes,
                                        const std::vector<model::Target>& targets) const = 0;
  // The loss terms of a batch, named as train::kLossNames, each a sum with its count.
  virtual std::map<std::string, model::LossTerm> loss_terms(const std::vector<at::Tensor>& images,
                                                            std::vector<model::Target> targets,
                                                            const model::BatchShape& shape) = 0;
  // Detections of images made by image(), at least score_threshold; the caller sets eval mode
  // (module().eval()) and the grad guard.
  virtual std::vector<eval::ImageDetections> detect(const std::vector<at::Tensor>& images, float score_threshold) = 0;
  // Whether detections carry masks: validation scores segm AP (and ranks by it) only then.
  virtual bool has_masks() const = 0;
};

}  // namespace mrcnn::train
