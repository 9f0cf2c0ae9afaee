#include "ops/cpu/roi_align_kernel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/roi_align_geometry.h"

namespace mrcnn::ops::cpu {
namespace {

// One bilinear sample: four neighbour offsets into a channel plane and their weights.
template <typename T>
struct Sample {
  int64_t pos1, pos2, pos3, pos4;
  T w1, w2, w3, w4;
};

namespace geometry = roi_align_geometry;
template <typename T>
using RoiGeometry = geometry::Roi<T>;

template <typename T>
RoiGeometry<T> roi_geometry(const T* roi, double spatial_scale, int64_t output_h, int64_t output_w,
                            int64_t sampling_ratio, bool aligned) {
  return geometry::roi<T>(roi, static_cast<T>(spatial_scale), output_h, output_w, sampling_ratio, aligned);
}

// A point more than one pixel outside the map contributes nothing: zero weights at offset 0.
template <typename T>
Sample<T> bilinear_sample(int64_t height, int64_t width, T y, T x) {
  geometry::Bilinear<T> b;
  if (!geometry::bilinear<T>(height, width, y, x, b)) return {0, 0, 0, 0, 0, 0, 0, 0};
  return {b.pos[0], b.pos[1], b.pos[2], b.pos[3], b.w[0], b.w[1], b.w[2], b.w[3]};
}

// Every bilinear sample of one ROI, bin by bin (row-major), grid points within a bin row-major:
// the same for every channel, so both passes compute them once per ROI.
template <typename T>
void roi_samples(const RoiGeometry<T>& g, int64_t height, int64_t width, int64_t output_h, int64_t output_w,
                 std::vector<Sample<T>>& samples) {
  samples.clear();
  samples.reserve(output_h * output_w * g.grid_h * g.grid_w);
  for (int64_t ph = 0; ph < output_h; ++ph)
    for (int64_t pw = 0; pw < output_w; ++pw)
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const T y = geometry::sample_y(g, ph, iy);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const T x = geometry::sample_x(g, pw, ix);
          samples.push_back(bilinear_sample<T>(height, width, y, x));
        }
      }
}

template <typename T>
void forward_impl(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                  int64_t output_w, int64_t sampling_ratio, bool aligned, at::Tensor& output) {
  const int64_t num_rois = rois.size(0), channels = input.size(1), height = input.size(2), width = input.size(3);
  const T* input_data = input.data_ptr<T>();
  const T* rois_data = rois.data_ptr<T>();
  T* output_data = output.data_ptr<T>();
  // ROIs are independent: spread them over the intra-op threads.
  at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
    std::vector<Sample<T>> samples;
    for (int64_t n = begin; n < end; ++n) {
      const RoiGeometry<T> g = roi_geometry<T>(rois_data + n * 5, spatial_scale, output_h, output_w,
                                               sampling_ratio, aligned);
      // The sample positions and weights are the same for every channel: compute them once.
      roi_samples<T>(g, height, width, output_h, output_w, samples);
      const int64_t per_bin = g.grid_h * g.grid_w;
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = input_data + (g.batch_index * channels + c) * height * width;
        T* out = output_data + (n * channels + c) * output_h * output_w;
        const Sample<T>* s = samples.data();
        for (int64_t bin = 0; bin < output_h * output_w; ++bin) {
          T value = 0;
          for (int64_t k = 0; k < per_bin; ++k, ++s)
            value += s->w1 * plane[s->pos1] + s->w2 * plane[s->pos2] + s->w3 * plane[s->pos3] + s->w4 * plane[s->pos4];
          out[bin] = value / g.count;
        }
      }
    }
  });
}

// The same computation on a channels-last (NHWC) input: the four neighbours of a sample are
// contiguous channel vectors, so each sample is one vectorisable pass over the channels. Every
// output value sees the same operations in the same order as in forward_impl.
template <typename T>
void forward_nhwc_impl(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                       int64_t output_w, int64_t sampling_ratio, bool aligned, at::Tensor& output) {
  const int64_t num_rois = rois.size(0), channels = input.size(1), height = input.size(2), width = input.size(3);
  const T* input_data = input.data_ptr<T>();  // (N, H, W, C) in memory
  const T* rois_data = rois.data_ptr<T>();
  T* output_data = output.data_ptr<T>();
  at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
    std::vector<Sample<T>> samples;
    std::vector<T> acc(channels);
    for (int64_t n = begin; n < end; ++n) {
      const RoiGeometry<T> g = roi_geometry<T>(rois_data + n * 5, spatial_scale, output_h, output_w,
                                               sampling_ratio, aligned);
      const T* image = input_data + g.batch_index * height * width * channels;
      for (int64_t ph = 0; ph < output_h; ++ph)
        for (int64_t pw = 0; pw < output_w; ++pw) {
          std::fill(acc.begin(), acc.end(), static_cast<T>(0));
          for (int64_t iy = 0; iy < g.grid_h; ++iy) {
            const T y = geometry::sample_y(g, ph, iy);
            for (int64_t ix = 0; ix < g.grid_w; ++ix) {
              const T x = geometry::sample_x(g, pw, ix);
              const Sample<T> s = bilinear_sample<T>(height, width, y, x);
              const T* p1 = image + s.pos1 * channels;
              const T* p2 = image + s.pos2 * channels;
              const T* p3 = image + s.pos3 * channels;
              const T* p4 = image + s.pos4 * channels;
              T* a = acc.data();
              for (int64_t c = 0; c < channels; ++c) a[c] += s.w1 * p1[c] + s.w2 * p2[c] + s.w3 * p3[c] + s.w4 * p4[c];
            }
          }
          T* out = output_data + n * channels * output_h * output_w + ph * output_w + pw;
          for (int64_t c = 0; c < channels; ++c) out[c * output_h * output_w] = acc[c] / g.count;
        }
    }
  });
}

template <typename T>
void backward_impl(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                   int64_t output_w, int64_t sampling_ratio, bool aligned, at::Tensor& grad_input) {
  const int64_t num_rois = rois.size(0), channels = grad_input.size(1);
  const int64_t height = grad_input.size(2), width = grad_input.size(3);
  const T* grad_out = grad_output.data_ptr<T>();
  const T* rois_data = rois.data_ptr<T>();
  T* grad_in = grad_input.data_ptr<T>();
  // Several ROIs write into the same image, but channel planes never overlap: parallel over channels.
  at::parallel_for(0, channels, 1, [&](int64_t c_begin, int64_t c_end) {
    std::vector<Sample<T>> samples;
    for (int64_t n = 0; n < num_rois; ++n) {
      const RoiGeometry<T> g = roi_geometry<T>(rois_data + n * 5, spatial_scale, output_h, output_w,
                                               sampling_ratio, aligned);
      // Positions and weights once per ROI, not once per channel (this loop was 9% of a step).
      roi_samples<T>(g, height, width, output_h, output_w, samples);
      const int64_t per_bin = g.grid_h * g.grid_w;
      for (int64_t c = c_begin; c < c_end; ++c) {
        T* plane = grad_in + (g.batch_index * channels + c) * height * width;
        const T* gout = grad_out + (n * channels + c) * output_h * output_w;
        const Sample<T>* s = samples.data();
        for (int64_t bin = 0; bin < output_h * output_w; ++bin) {
          const T share = gout[bin] / g.count;
          for (int64_t k = 0; k < per_bin; ++k, ++s) {
            plane[s->pos1] += share * s->w1;
            plane[s->pos2] += share * s->w2;
            plane[s->pos3] += share * s->w3;
            plane[s->pos4] += share * s->w4;
          }
        }
      }
    }
  });
}

}  // namespace

at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                             int64_t output_h, int64_t output_w, int64_t sampling_ratio, bool aligned) {
  at::Tensor output = at::zeros({rois.size(0), input.size(1), output_h, output_w}, input.options());
  if (rois.size(0) == 0) return output;
  const at::Tensor rois_c = rois.contiguous();
  if (input.suggest_memory_format() == at::MemoryFormat::ChannelsLast) {
    const at::Tensor input_c = input.contiguous(at::MemoryFormat::ChannelsLast);
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward_nhwc", [&] {
      forward_nhwc_impl<scalar_t>(input_c, rois_c, spatial_scale, output_h, output_w, sampling_ratio, aligned, output);
    });
    return output;
  }
  const at::Tensor input_c = input.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward", [&] {
    forward_impl<scalar_t>(input_c, rois_c, spatial_scale, output_h, output_w, sampling_ratio, aligned, output);
  });
  return output;
}

at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois, double spatial_scale,
                              int64_t output_h, int64_t output_w, int64_t batch, int64_t channels, int64_t height,
                              int64_t width, int64_t sampling_ratio, bool aligned) {
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad_output.options());
  if (rois.size(0) == 0) return grad_input;
  const at::Tensor grad_c = grad_output.contiguous();
  const at::Tensor rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "roi_align_backward", [&] {
    backward_impl<scalar_t>(grad_c, rois_c, spatial_scale, output_h, output_w, sampling_ratio, aligned, grad_input);
  });
  return grad_input;
}

}  // namespace mrcnn::ops::cpu
