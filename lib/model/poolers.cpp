#include "model/poolers.h"

#include <ATen/ATen.h>

#include <cmath>

#include "ops/boxes.h"
#include "ops/reduced_precision.h"
#include "ops/roi_align.h"

namespace mrcnn::model {
namespace {

constexpr double kCanonicalScale = 224;
constexpr double kCanonicalLevel = 4;
constexpr double kLevelEps = 1e-6;

// The power of two closest to feature size / image size (torchvision's _infer_scale).
double infer_scale(int64_t feature_size, int64_t image_size) {
  const double approx = static_cast<double>(feature_size) / static_cast<double>(image_size);
  // torchvision rounds log2 in float32 (torch.tensor(approx).log2().round()).
  return std::pow(2.0, std::nearbyint(std::log2(static_cast<float>(approx))));
}

}  // namespace

at::Tensor map_boxes_to_levels(const at::Tensor& boxes, int64_t k_min, int64_t k_max) {
  const at::Tensor s = at::sqrt(ops::box_area(boxes));
  const at::Tensor eps = at::scalar_tensor(kLevelEps, s.options());
  const at::Tensor levels = at::floor(kCanonicalLevel + at::log2(s / kCanonicalScale) + eps);
  return levels.clamp(k_min, k_max).to(at::kLong) - k_min;
}

at::Tensor multiscale_roi_align(const std::vector<at::Tensor>& all_features, const std::vector<at::Tensor>& boxes,
                                const std::vector<ImageSize>& image_sizes, const RoiPoolSettings& settings,
                                ImageSize largest_at_least) {
  // Only P2..P5 are pooled (torchvision's featmap_names '0'..'3').
  const std::vector<at::Tensor> features(all_features.begin(), all_features.begin() + 4);
  auto [max_h, max_w] = largest_at_least;
  for (const auto& [h, w] : image_sizes) {
    max_h = std::max(max_h, h);
    max_w = std::max(max_w, w);
  }
  std::vector<double> scales;
  for (const auto& f : features) scales.push_back(infer_scale(f.size(-2), max_h));
  (void)max_w;  // torchvision checks both sides agree; the height decides
  const int64_t k_min = static_cast<int64_t>(-std::log2(scales.front()));
  const int64_t k_max = static_cast<int64_t>(-std::log2(scales.back()));

  std::vector<at::Tensor> rois_per_image;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const at::Tensor ids = at::full({boxes[i].size(0), 1}, static_cast<double>(i), boxes[i].options());
    rois_per_image.push_back(at::cat({ids, boxes[i]}, 1));
  }
  const at::Tensor rois = at::cat(rois_per_image, 0);
  const int64_t channels = features[0].size(1);
  // Pooled in float32 when the features are bf16/fp16 (autocast), as torchvision's autocast rule
  // for roi_align does; float32 and float64 features keep their type.
  const at::ScalarType pooled_type =
      ops::is_reduced_precision(features[0]) ? at::kFloat : features[0].scalar_type();
  at::Tensor result = at::zeros({rois.size(0), channels, settings.output_size, settings.output_size},
                                features[0].options().dtype(pooled_type));
  if (rois.size(0) == 0) return result;
  const at::Tensor levels = map_boxes_to_levels(rois.narrow(1, 1, 4), k_min, k_max);
  for (size_t level = 0; level < features.size(); ++level) {
    const at::Tensor in_level = at::where(levels == static_cast<int64_t>(level))[0];
    if (in_level.numel() == 0) continue;
    const at::Tensor pooled =
        ops::roi_align(features[level].to(pooled_type), rois.index_select(0, in_level).to(pooled_type), scales[level], settings.output_size,
                       settings.output_size, settings.sampling_ratio, settings.aligned);
    result = result.index_put({in_level}, pooled.to(result.scalar_type()));
  }
  return result;
}

}  // namespace mrcnn::model
