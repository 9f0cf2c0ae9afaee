#include "ops/cuda/roi_align_kernel.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace mrcnn::ops::cuda {
namespace {

constexpr int kThreads = 256;

// The geometry of ops/cpu/roi_align_kernel.cpp, term for term, so both kernels sample the same
// points with the same weights.
template <typename T>
struct RoiGeometry {
  int64_t batch_index;
  T start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;
  T count;
};

template <typename T>
__device__ RoiGeometry<T> roi_geometry(const T* roi, T scale, int64_t output_h, int64_t output_w,
                                       int64_t sampling_ratio, bool aligned) {
  RoiGeometry<T> g;
  g.batch_index = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? static_cast<T>(0.5) : static_cast<T>(0.0);
  const T start_w = roi[1] * scale - offset;
  const T start_h = roi[2] * scale - offset;
  const T end_w = roi[3] * scale - offset;
  const T end_h = roi[4] * scale - offset;
  T roi_w = end_w - start_w;
  T roi_h = end_h - start_h;
  if (!aligned) {
    roi_w = max(roi_w, static_cast<T>(1.));
    roi_h = max(roi_h, static_cast<T>(1.));
  }
  g.start_h = start_h;
  g.start_w = start_w;
  g.bin_h = roi_h / static_cast<T>(output_h);
  g.bin_w = roi_w / static_cast<T>(output_w);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceil(roi_h / output_h));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceil(roi_w / output_w));
  g.count = static_cast<T>(max(g.grid_h * g.grid_w, static_cast<int64_t>(1)));
  return g;
}

// Bilinear neighbours and weights at (y, x); false for a point more than a pixel outside the map.
template <typename T>
__device__ bool bilinear(int64_t height, int64_t width, T y, T x, int64_t pos[4], T w[4]) {
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
  pos[0] = y_low * width + x_low;
  pos[1] = y_low * width + x_high;
  pos[2] = y_high * width + x_low;
  pos[3] = y_high * width + x_high;
  w[0] = hy * hx;
  w[1] = hy * lx;
  w[2] = ly * hx;
  w[3] = ly * lx;
  return true;
}

template <typename T>
__device__ T sample_y(const RoiGeometry<T>& g, int64_t ph, int64_t iy) {
  return g.start_h + ph * g.bin_h + static_cast<T>(iy + .5f) * g.bin_h / static_cast<T>(g.grid_h);
}
template <typename T>
__device__ T sample_x(const RoiGeometry<T>& g, int64_t pw, int64_t ix) {
  return g.start_w + pw * g.bin_w + static_cast<T>(ix + .5f) * g.bin_w / static_cast<T>(g.grid_w);
}

// (roi, channel, ph, pw) of a flat index into the (K, C, output_h, output_w) output.
__device__ inline void output_position(int64_t index, int64_t channels, int64_t output_h, int64_t output_w, int64_t& n,
                                       int64_t& c, int64_t& ph, int64_t& pw) {
  pw = index % output_w;
  ph = (index / output_w) % output_h;
  c = (index / output_w / output_h) % channels;
  n = index / output_w / output_h / channels;
}

// One thread per output value (roi, channel, ph, pw).
template <typename T>
__global__ void forward_kernel(int64_t total, const T* __restrict__ input, const T* __restrict__ rois, T scale,
                               int64_t channels, int64_t height, int64_t width, int64_t output_h, int64_t output_w,
                               int64_t sampling_ratio, bool aligned, T* __restrict__ output) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t n, c, ph, pw;
    output_position(index, channels, output_h, output_w, n, c, ph, pw);
    const RoiGeometry<T> g = roi_geometry<T>(rois + n * 5, scale, output_h, output_w, sampling_ratio, aligned);
    const T* plane = input + (g.batch_index * channels + c) * height * width;
    T value = 0;
    int64_t pos[4];
    T w[4];
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const T y = sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix)
        if (bilinear<T>(height, width, y, sample_x(g, pw, ix), pos, w))
          value += w[0] * plane[pos[0]] + w[1] * plane[pos[1]] + w[2] * plane[pos[2]] + w[3] * plane[pos[3]];
    }
    output[index] = value / g.count;
  }
}

// One thread per gradient value of the output; each sample's share is added atomically.
template <typename T>
__global__ void backward_kernel(int64_t total, const T* __restrict__ grad_output, const T* __restrict__ rois,
                                T scale, int64_t channels, int64_t height, int64_t width, int64_t output_h,
                                int64_t output_w, int64_t sampling_ratio, bool aligned, T* __restrict__ grad_input) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t n, c, ph, pw;
    output_position(index, channels, output_h, output_w, n, c, ph, pw);
    const RoiGeometry<T> g = roi_geometry<T>(rois + n * 5, scale, output_h, output_w, sampling_ratio, aligned);
    T* plane = grad_input + (g.batch_index * channels + c) * height * width;
    const T share = grad_output[index] / g.count;
    int64_t pos[4];
    T w[4];
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const T y = sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix)
        if (bilinear<T>(height, width, y, sample_x(g, pw, ix), pos, w))
          for (int k = 0; k < 4; ++k) atomicAdd(plane + pos[k], w[k] * share);
    }
  }
}

unsigned blocks_for(int64_t total) {
  return static_cast<unsigned>(std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t(1) << 20));
}

}  // namespace

at::Tensor roi_align_forward(const at::Tensor& input_any, const at::Tensor& rois_any, double spatial_scale,
                             int64_t output_h, int64_t output_w, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(input_any.is_cuda() && rois_any.is_cuda(), "roi_align_forward: input and rois must be on CUDA");
  const c10::cuda::CUDAGuard guard(input_any.device());
  const at::Tensor input = input_any.contiguous();
  const at::Tensor rois = rois_any.to(input.scalar_type()).contiguous();
  const int64_t channels = input.size(1);
  at::Tensor output = at::zeros({rois.size(0), channels, output_h, output_w}, input.options());
  const int64_t total = output.numel();
  if (total == 0) return output;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "mrcnn_roi_align_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        total, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), static_cast<scalar_t>(spatial_scale), channels,
        input.size(2), input.size(3), output_h, output_w, sampling_ratio, aligned, output.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

at::Tensor roi_align_backward(const at::Tensor& grad_output_any, const at::Tensor& rois_any, double spatial_scale,
                              int64_t output_h, int64_t output_w, int64_t batch, int64_t channels, int64_t height,
                              int64_t width, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(grad_output_any.is_cuda() && rois_any.is_cuda(), "roi_align_backward: tensors must be on CUDA");
  const c10::cuda::CUDAGuard guard(grad_output_any.device());
  const at::Tensor grad_output = grad_output_any.contiguous();
  const at::Tensor rois = rois_any.to(grad_output.scalar_type()).contiguous();
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad_output.options());
  const int64_t total = grad_output.numel();
  if (total == 0) return grad_input;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "mrcnn_roi_align_backward_cuda", [&] {
    backward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        total, grad_output.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), static_cast<scalar_t>(spatial_scale),
        channels, height, width, output_h, output_w, sampling_ratio, aligned, grad_input.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_input;
}

}  // namespace mrcnn::ops::cuda
