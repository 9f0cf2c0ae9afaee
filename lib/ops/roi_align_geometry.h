// ROIAlign's sampling geometry, one definition for the CPU and CUDA kernels, so that both sample
// the same points with the same bilinear weights (torchvision's roi_align arithmetic, term for term).
#pragma once

#include <math.h>

#include <cstdint>

#include "ops/host_device.h"

namespace mrcnn::ops::roi_align_geometry {

// The box of one ROI in feature-map coordinates and how each output bin is sampled.
template <typename T>
struct Roi {
  int64_t batch_index;
  T start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;  // sample points per bin
  T count;                 // grid_h * grid_w, at least 1
};

// roi: (batch index, x1, y1, x2, y2) in input-image pixels; scale in T, as torchvision computes it.
template <typename T>
MRCNN_HOST_DEVICE inline Roi<T> roi(const T* box, T scale, int64_t output_h, int64_t output_w, int64_t sampling_ratio,
                                    bool aligned) {
  Roi<T> g;
  g.batch_index = static_cast<int64_t>(box[0]);
  const T offset = aligned ? static_cast<T>(0.5) : static_cast<T>(0.0);
  const T start_w = box[1] * scale - offset;
  const T start_h = box[2] * scale - offset;
  const T end_w = box[3] * scale - offset;
  const T end_h = box[4] * scale - offset;
  T roi_w = end_w - start_w;
  T roi_h = end_h - start_h;
  if (!aligned) {  // the legacy behaviour: boxes at least one pixel wide
    const T one = static_cast<T>(1.);
    roi_w = roi_w < one ? one : roi_w;
    roi_h = roi_h < one ? one : roi_h;
  }
  g.start_h = start_h;
  g.start_w = start_w;
  g.bin_h = roi_h / static_cast<T>(output_h);
  g.bin_w = roi_w / static_cast<T>(output_w);
  // ceil in double is exact for a float quotient too.
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceil(static_cast<double>(roi_h / output_h)));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceil(static_cast<double>(roi_w / output_w)));
  const int64_t points = g.grid_h * g.grid_w;
  g.count = static_cast<T>(points > 1 ? points : 1);
  return g;
}

// The sample point (iy, ix) of bin (ph, pw).
template <typename T>
MRCNN_HOST_DEVICE inline T sample_y(const Roi<T>& g, int64_t ph, int64_t iy) {
  return g.start_h + ph * g.bin_h + static_cast<T>(iy + .5f) * g.bin_h / static_cast<T>(g.grid_h);
}
template <typename T>
MRCNN_HOST_DEVICE inline T sample_x(const Roi<T>& g, int64_t pw, int64_t ix) {
  return g.start_w + pw * g.bin_w + static_cast<T>(ix + .5f) * g.bin_w / static_cast<T>(g.grid_w);
}

// One bilinear sample: the four neighbours' offsets into a channel plane and their weights.
template <typename T>
struct Bilinear {
  int64_t pos[4];
  T w[4];
};

// The sample at (y, x) of a height x width plane; false (and nothing to add) for a point more
// than one pixel outside the plane.
template <typename T>
MRCNN_HOST_DEVICE inline bool bilinear(int64_t height, int64_t width, T y, T x, Bilinear<T>& out) {
  if (y < -1.0 || y > height || x < -1.0 || x > width) return false;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - y_low, lx = x - x_low;
  const T hy = static_cast<T>(1.) - ly, hx = static_cast<T>(1.) - lx;
  out.pos[0] = y_low * width + x_low;
  out.pos[1] = y_low * width + x_high;
  out.pos[2] = y_high * width + x_low;
  out.pos[3] = y_high * width + x_high;
  out.w[0] = hy * hx;
  out.w[1] = hy * lx;
  out.w[2] = ly * hx;
  out.w[3] = ly * lx;
  return true;
}

}  // namespace mrcnn::ops::roi_align_geometry
