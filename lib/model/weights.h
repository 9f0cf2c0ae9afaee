// Loading named weights into the model: torchvision's old and new key names, shape checks, and
// a report of what was loaded, skipped and missing.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "io/weights_file.h"

namespace mrcnn::model {

// torchvision renamed keys in 0.13; its published COCO weights use the old names:
//   backbone.fpn.inner_blocks.N.weight      → backbone.fpn.inner_blocks.N.0.weight (and layer_blocks)
//   rpn.head.conv.weight                    → rpn.head.conv.0.0.weight
//   roi_heads.mask_head.mask_fcnK.weight    → roi_heads.mask_head.(K-1).0.weight
std::string canonical_key(const std::string& key);

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> shape_mismatch;  // "key: expected [a, b], found [c, d]"
  std::vector<std::string> missing;         // in the model, not in the file
  std::vector<std::string> unexpected;      // in the file, not in the model
  std::vector<std::string> non_finite;      // loaded, holding NaN or infinite values (a warning is logged)
  bool complete() const { return shape_mismatch.empty() && missing.empty() && unexpected.empty(); }
};

// Copies matching tensors into the module's parameters and buffers. Without allow_partial any
// mismatch throws Error listing the first ones (expected and found shapes); with it, what
// matches is loaded and the rest reported. num_batches_tracked entries are ignored. Loaded
// tensors holding NaN or infinite values are reported and logged as a warning naming source.
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& weights, bool allow_partial,
                           const std::string& source);

// After a load with allow_partial: a warning naming source and counting what was loaded, skipped,
// missing and unexpected, unless the load was complete (mrcnn-infer --allow-partial, either family).
void warn_if_partial(const LoadReport& report, const std::string& source);

// The state-dict name of the first convolution, the one tensor whose shape depends on the bands.
inline constexpr const char* kFirstConvKey = "backbone.body.conv1.weight";

// RGB filters (out, 3, kh, kw) for images of `bands` bands: bands 0-2 keep the R, G, B filters,
// further bands start from their mean, and all are scaled by 3 / bands so that activations keep
// their magnitude; one band (grayscale) gets the sum of the RGB filters.
at::Tensor rgb_filters_to_bands(const at::Tensor& rgb, int64_t bands);

// The module's parameters and buffers under torchvision's names, for checkpoints.
StateDict module_state_dict(const torch::nn::Module& module);

}  // namespace mrcnn::model
