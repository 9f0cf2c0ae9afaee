#include "ops/aten/roi_align_aten.h"

#include <ATen/ATen.h>

#include <map>

namespace mrcnn::ops::aten {
namespace {

using at::indexing::Slice;

// ROIs whose sampling grid is grid_h x grid_w, at once. feature_rows: the input as (N*H*W, C).
at::Tensor align_group(const at::Tensor& feature_rows, int64_t height, int64_t width, const at::Tensor& rois,
                       double spatial_scale, int64_t output_h, int64_t output_w, int64_t grid_h, int64_t grid_w,
                       bool aligned) {
  const auto opts = rois.options();
  const double offset = aligned ? 0.5 : 0.0;
  const at::Tensor batch = rois.select(1, 0).to(at::kLong);
  const at::Tensor start_w = rois.select(1, 1) * spatial_scale - offset;
  const at::Tensor start_h = rois.select(1, 2) * spatial_scale - offset;
  at::Tensor roi_w = rois.select(1, 3) * spatial_scale - offset - start_w;
  at::Tensor roi_h = rois.select(1, 4) * spatial_scale - offset - start_h;
  if (!aligned) {
    roi_w = roi_w.clamp_min(1.0);
    roi_h = roi_h.clamp_min(1.0);
  }
  const at::Tensor bin_h = roi_h / static_cast<double>(output_h);
  const at::Tensor bin_w = roi_w / static_cast<double>(output_w);
  // Sample coordinates: y (K, PH, GH) and x (K, PW, GW), as the CPU kernel computes them.
  const at::Tensor ph = at::arange(output_h, opts).view({1, -1, 1});
  const at::Tensor pw = at::arange(output_w, opts).view({1, -1, 1});
  const at::Tensor iy = (at::arange(grid_h, opts) + 0.5).view({1, 1, -1});
  const at::Tensor ix = (at::arange(grid_w, opts) + 0.5).view({1, 1, -1});
  const at::Tensor y = start_h.view({-1, 1, 1}) + ph * bin_h.view({-1, 1, 1}) +
                       iy * bin_h.view({-1, 1, 1}) / static_cast<double>(grid_h);
  const at::Tensor x = start_w.view({-1, 1, 1}) + pw * bin_w.view({-1, 1, 1}) +
                       ix * bin_w.view({-1, 1, 1}) / static_cast<double>(grid_w);
  // Broadcast to (K, PH, PW, GH, GW).
  at::Tensor yy = y.view({-1, output_h, 1, grid_h, 1}).expand({-1, output_h, output_w, grid_h, grid_w});
  at::Tensor xx = x.view({-1, 1, output_w, 1, grid_w}).expand({-1, output_h, output_w, grid_h, grid_w});
  const at::Tensor outside = (yy < -1.0) | (yy > height) | (xx < -1.0) | (xx > width);
  yy = yy.clamp_min(0);
  xx = xx.clamp_min(0);
  at::Tensor y_low = yy.to(at::kLong);
  at::Tensor x_low = xx.to(at::kLong);
  const at::Tensor y_edge = y_low >= height - 1;
  const at::Tensor x_edge = x_low >= width - 1;
  y_low = at::where(y_edge, at::full_like(y_low, height - 1), y_low);
  x_low = at::where(x_edge, at::full_like(x_low, width - 1), x_low);
  const at::Tensor y_high = at::where(y_edge, y_low, y_low + 1);
  const at::Tensor x_high = at::where(x_edge, x_low, x_low + 1);
  yy = at::where(y_edge, y_low.to(yy.scalar_type()), yy);
  xx = at::where(x_edge, x_low.to(xx.scalar_type()), xx);
  const at::Tensor ly = yy - y_low, lx = xx - x_low;
  const at::Tensor hy = 1 - ly, hx = 1 - lx;
  const at::Tensor keep = (~outside).to(yy.scalar_type());
  const at::Tensor base = (batch * (height * width)).view({-1, 1, 1, 1, 1});
  const auto corner = [&](const at::Tensor& yi, const at::Tensor& xi, const at::Tensor& weight) {
    const at::Tensor rows = (base + yi * width + xi).reshape(-1);
    return feature_rows.index_select(0, rows).view({-1, output_h, output_w, grid_h, grid_w, feature_rows.size(1)}) *
           (weight * keep).unsqueeze(-1);
  };
  const at::Tensor value = corner(y_low, x_low, hy * hx) + corner(y_low, x_high, hy * lx) +
                           corner(y_high, x_low, ly * hx) + corner(y_high, x_high, ly * lx);
  const double count = static_cast<double>(std::max<int64_t>(grid_h * grid_w, 1));
  return (value.sum({3, 4}) / count).permute({0, 3, 1, 2});  // (K, C, PH, PW)
}

}  // namespace

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                     int64_t output_w, int64_t sampling_ratio, bool aligned) {
  const int64_t channels = input.size(1), height = input.size(2), width = input.size(3);
  at::Tensor output = at::zeros({rois.size(0), channels, output_h, output_w}, input.options());
  if (rois.size(0) == 0) return output;
  const at::Tensor feature_rows = input.permute({0, 2, 3, 1}).reshape({-1, channels});
  // Group ROIs by their sampling grid (fixed when sampling_ratio > 0, else from the ROI size),
  // and bound the memory of each gather by chunking.
  at::Tensor grid_h, grid_w;
  if (sampling_ratio > 0) {
    grid_h = at::full({rois.size(0)}, sampling_ratio, rois.options().dtype(at::kLong));
    grid_w = grid_h;
  } else {
    // The ROI size exactly as the kernels compute it, so that ceil() agrees at integer edges.
    const double offset = aligned ? 0.5 : 0.0;
    at::Tensor roi_w = (rois.select(1, 3) * spatial_scale - offset) - (rois.select(1, 1) * spatial_scale - offset);
    at::Tensor roi_h = (rois.select(1, 4) * spatial_scale - offset) - (rois.select(1, 2) * spatial_scale - offset);
    if (!aligned) {
      roi_w = roi_w.clamp_min(1.0);
      roi_h = roi_h.clamp_min(1.0);
    }
    grid_h = at::ceil(roi_h / static_cast<double>(output_h)).to(at::kLong);
    grid_w = at::ceil(roi_w / static_cast<double>(output_w)).to(at::kLong);
  }
  const at::Tensor keys = (grid_h * 100003 + grid_w).cpu();
  const at::Tensor unique_keys = std::get<0>(at::_unique(keys));
  for (int64_t u = 0; u < unique_keys.size(0); ++u) {
    const int64_t key = unique_keys[u].item<int64_t>();
    const int64_t gh = key / 100003, gw = key % 100003;
    const at::Tensor members = at::where(keys == key)[0].to(rois.device());
    constexpr int64_t kChunk = 256;
    for (int64_t start = 0; start < members.size(0); start += kChunk) {
      const at::Tensor idx = members.narrow(0, start, std::min(kChunk, members.size(0) - start));
      const at::Tensor part = align_group(feature_rows, height, width, rois.index_select(0, idx), spatial_scale,
                                          output_h, output_w, gh, gw, aligned);
      output = output.index_put({idx}, part);
    }
  }
  return output;
}

}  // namespace mrcnn::ops::aten
