// Anchor boxes over the FPN levels: a few sizes and aspect ratios at every feature-map location.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace mrcnn::model {

class AnchorGenerator {
 public:
  // sizes: per level; aspect_ratios (h/w): the same for every level.
  AnchorGenerator(std::vector<std::vector<int64_t>> sizes, std::vector<double> aspect_ratios);

  int64_t anchors_per_location() const;

  // Anchors (sum over levels of H*W*A, 4) for a padded batch of size (batch_h, batch_w) and the
  // feature maps' sizes; ordered level, then location (row-major), then anchor. The same for every
  // image of the batch.
  at::Tensor anchors(int64_t batch_h, int64_t batch_w, const std::vector<std::pair<int64_t, int64_t>>& feature_sizes,
                     const at::TensorOptions& options) const;

  // The zero-centred anchors of one level (A, 4), rounded as torchvision rounds them.
  at::Tensor cell_anchors(size_t level, const at::TensorOptions& options) const;

 private:
  std::vector<std::vector<int64_t>> sizes_;
  std::vector<double> aspect_ratios_;
};

}  // namespace mrcnn::model
