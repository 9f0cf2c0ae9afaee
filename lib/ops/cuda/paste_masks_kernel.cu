#include "ops/cuda/paste_masks_kernel.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

namespace mrcnn::ops::cuda {
namespace {

// upsample_bilinear2d's source coordinate (align_corners false, no scale factor given).
__device__ inline float source_index(float scale, int64_t dst) {
  const float src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
  return src < 0 ? 0.f : src;
}

// One thread per output byte: the detection owning it is found by binary search over offsets.
__global__ void paste_binary(int64_t total, int64_t detections, int64_t m, float threshold,
                             const float* __restrict__ masks, const int64_t* __restrict__ placements,
                             const int64_t* __restrict__ offsets, uint8_t* __restrict__ out) {
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= total) return;
  int64_t lo = 0, hi = detections - 1;
  while (lo < hi) {  // the last detection whose part starts at or before index
    const int64_t mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= index) lo = mid;
    else hi = mid - 1;
  }
  const int64_t* p = placements + lo * 8;
  const int64_t x0 = p[0], y0 = p[1], w = p[2], h = p[3], cx0 = p[4], cy0 = p[5], cw = p[6];
  const int64_t local = index - offsets[lo];
  const int64_t dst_y = cy0 + local / cw - y0, dst_x = cx0 + local % cw - x0;
  // The mask padded by one zero pixel on each side: (m + 2) x (m + 2) resized to (h, w).
  const int64_t padded = m + 2;
  const float sy = source_index(static_cast<float>(padded) / static_cast<float>(h), dst_y);
  const float sx = source_index(static_cast<float>(padded) / static_cast<float>(w), dst_x);
  const int64_t iy = static_cast<int64_t>(sy), ix = static_cast<int64_t>(sx);
  const int64_t iy1 = iy < padded - 1 ? iy + 1 : iy, ix1 = ix < padded - 1 ? ix + 1 : ix;
  const float ly = sy - iy, lx = sx - ix;
  const float* mask = masks + lo * m * m;
  // Pixel (y, x) of the zero-padded mask (not called `at`, which would hide ATen's namespace).
  const auto padded_pixel = [&](int64_t y, int64_t x) -> float {
    return (y >= 1 && y <= m && x >= 1 && x <= m) ? mask[(y - 1) * m + (x - 1)] : 0.f;
  };
  const float value = (1.f - ly) * ((1.f - lx) * padded_pixel(iy, ix) + lx * padded_pixel(iy, ix1)) +
                      ly * ((1.f - lx) * padded_pixel(iy1, ix) + lx * padded_pixel(iy1, ix1));
  out[index] = value > threshold ? 1 : 0;
}

}  // namespace

at::Tensor paste_masks_kernel(const at::Tensor& masks, const at::Tensor& placements, const at::Tensor& offsets,
                              int64_t total, double threshold) {
  TORCH_CHECK(masks.is_cuda() && masks.dim() == 3 && masks.size(1) == masks.size(2),
              "paste_masks_kernel: masks must be (D, M, M) on a CUDA device, got ", masks.sizes());
  const c10::cuda::CUDAGuard guard(masks.device());
  at::Tensor out = at::empty({total}, masks.options().dtype(at::kByte));
  if (total == 0) return out;
  const at::Tensor m = masks.to(at::kFloat).contiguous();
  const at::Tensor p = placements.to(masks.device(), at::kLong).contiguous();
  const at::Tensor o = offsets.to(masks.device(), at::kLong).contiguous();
  constexpr int kThreads = 256;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  paste_binary<<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      total, m.size(0), m.size(1), static_cast<float>(threshold), m.data_ptr<float>(), p.data_ptr<int64_t>(),
      o.data_ptr<int64_t>(), out.data_ptr<uint8_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace mrcnn::ops::cuda
