#include "ops/cuda/roi_align_kernel.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/roi_align_geometry.h"

namespace mrcnn::ops::cuda {
namespace {

constexpr int kThreads = 256;

namespace geometry = roi_align_geometry;  // shared with the CPU kernel: the same points and weights

// (roi, channel, ph, pw) of a flat index into the (K, C, output_h, output_w) output.
__device__ inline void output_position(int64_t index, int64_t channels, int64_t output_h, int64_t output_w, int64_t& n,
                                       int64_t& c, int64_t& ph, int64_t& pw) {
  pw = index % output_w;
  ph = (index / output_w) % output_h;
  c = (index / output_w / output_h) % channels;
  n = index / output_w / output_h / channels;
}

// One thread per output value (roi, channel, ph, pw).
// channels_last: the input is NHWC in memory (the CPU kernel's fast path too); the output is
// always (K, C, output_h, output_w).
template <typename T>
__global__ void forward_kernel(int64_t total, const T* __restrict__ input, const T* __restrict__ rois, T scale,
                               int64_t channels, int64_t height, int64_t width, int64_t output_h, int64_t output_w,
                               int64_t sampling_ratio, bool aligned, bool channels_last, T* __restrict__ output) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t n, c, ph, pw;
    output_position(index, channels, output_h, output_w, n, c, ph, pw);
    const geometry::Roi<T> g = geometry::roi<T>(rois + n * 5, scale, output_h, output_w, sampling_ratio, aligned);
    // Pixel p of this channel plane is plane[p * step].
    const T* plane = channels_last ? input + g.batch_index * height * width * channels + c
                                   : input + (g.batch_index * channels + c) * height * width;
    const int64_t step = channels_last ? channels : 1;
    T value = 0;
    geometry::Bilinear<T> b;
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const T y = geometry::sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix)
        if (geometry::bilinear<T>(height, width, y, geometry::sample_x(g, pw, ix), b))
          value += b.w[0] * plane[b.pos[0] * step] + b.w[1] * plane[b.pos[1] * step] +
                   b.w[2] * plane[b.pos[2] * step] + b.w[3] * plane[b.pos[3] * step];
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
    const geometry::Roi<T> g = geometry::roi<T>(rois + n * 5, scale, output_h, output_w, sampling_ratio, aligned);
    T* plane = grad_input + (g.batch_index * channels + c) * height * width;
    const T share = grad_output[index] / g.count;
    geometry::Bilinear<T> b;
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const T y = geometry::sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix)
        if (geometry::bilinear<T>(height, width, y, geometry::sample_x(g, pw, ix), b))
          for (int k = 0; k < 4; ++k) atomicAdd(plane + b.pos[k], b.w[k] * share);
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
  // NHWC features (channels-last convolutions) are read as they are, not copied to NCHW first.
  const bool channels_last = input_any.dim() == 4 && input_any.size(1) > 1 &&
                             input_any.is_contiguous(at::MemoryFormat::ChannelsLast) && !input_any.is_contiguous();
  const at::Tensor input = channels_last ? input_any : input_any.contiguous();
  const at::Tensor rois = rois_any.to(input.scalar_type()).contiguous();
  const int64_t channels = input.size(1);
  at::Tensor output = at::zeros({rois.size(0), channels, output_h, output_w}, input.options());
  const int64_t total = output.numel();
  if (total == 0) return output;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "mrcnn_roi_align_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        total, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), static_cast<scalar_t>(spatial_scale), channels,
        input.size(2), input.size(3), output_h, output_w, sampling_ratio, aligned, channels_last,
        output.data_ptr<scalar_t>());
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
