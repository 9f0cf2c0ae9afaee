#include "ops/cuda/nms_kernel.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <vector>

#include "ops/nms_greedy.h"

namespace mrcnn::ops::cuda {
namespace {

using nms_greedy::kBoxesPerWord;
constexpr int64_t kMaxSharedBytes = 48 * 1024 - 1024;  // the default limit, less the kernel's statics

// Products rounded on their own (no fused multiply-add), as the ATen ops round them.
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// The same arithmetic as ops::box_iou (areas without +1, union = a + b - intersection), so the
// kernel keeps exactly what the ATen path keeps.
template <typename T>
__device__ inline bool overlaps_too_much(const T* a, const T* b, T threshold) {
  const T w = max(min(a[2], b[2]) - max(a[0], b[0]), T(0));
  const T h = max(min(a[3], b[3]) - max(a[1], b[1]), T(0));
  const T inter = mul_rn(w, h);
  const T area_a = mul_rn(a[2] - a[0], a[3] - a[1]);
  const T area_b = mul_rn(b[2] - b[0], b[3] - b[1]);
  return inter / (area_a + area_b - inter) > threshold;
}

// Block (column word c, row word r), r <= c: for each of the 64 rows i of word r, bit k of
// mask[i][c] says whether box i suppresses box 64c + k (only boxes after i count).
template <typename T>
__global__ void overlap_mask(int64_t n, int64_t words, T threshold, const T* __restrict__ boxes,
                             unsigned long long* __restrict__ mask) {
  const int64_t row_word = blockIdx.y, col_word = blockIdx.x;
  if (row_word > col_word) return;
  const int rows = static_cast<int>(min(n - row_word * kBoxesPerWord, static_cast<int64_t>(kBoxesPerWord)));
  const int cols = static_cast<int>(min(n - col_word * kBoxesPerWord, static_cast<int64_t>(kBoxesPerWord)));
  __shared__ T column[kBoxesPerWord * 4];
  if (threadIdx.x < cols)
    for (int d = 0; d < 4; ++d) column[threadIdx.x * 4 + d] = boxes[(col_word * kBoxesPerWord + threadIdx.x) * 4 + d];
  __syncthreads();
  if (threadIdx.x >= rows) return;
  const int64_t i = row_word * kBoxesPerWord + threadIdx.x;
  const T* box = boxes + i * 4;
  unsigned long long bits = 0;
  for (int k = row_word == col_word ? threadIdx.x + 1 : 0; k < cols; ++k)
    if (overlaps_too_much(box, column + k * 4, threshold)) bits |= 1ULL << k;
  mask[i * words + col_word] = bits;
}

// The greedy pass (ops/nms_greedy.h) by one block: word by word, thread 0 settles which of the
// word's 64 boxes survive from the diagonal words, then every thread ORs the survivors' rows into
// its share of the later words.
__global__ void greedy_keep(int64_t n, int64_t words, const uint64_t* __restrict__ mask, bool* __restrict__ keep) {
  extern __shared__ uint64_t removed[];
  __shared__ uint64_t diagonal[kBoxesPerWord];
  __shared__ uint64_t survivors;
  for (int64_t b = threadIdx.x; b < words; b += blockDim.x) removed[b] = 0;
  __syncthreads();
  for (int64_t w = 0; w < words; ++w) {
    const int count = static_cast<int>(min(n - w * kBoxesPerWord, static_cast<int64_t>(kBoxesPerWord)));
    if (threadIdx.x < count) diagonal[threadIdx.x] = mask[(w * kBoxesPerWord + threadIdx.x) * words + w];
    __syncthreads();
    if (threadIdx.x == 0) survivors = nms_greedy::survivors_of_word(removed[w], diagonal, count);
    __syncthreads();
    const uint64_t kept = survivors;
    if (threadIdx.x < count) keep[w * kBoxesPerWord + threadIdx.x] = (kept >> threadIdx.x) & 1ULL;
    nms_greedy::remove_suppressed(removed, mask, words, w, kept, static_cast<int>(threadIdx.x),
                                  static_cast<int>(blockDim.x));
    __syncthreads();
  }
}

// The greedy pass on the host, for masks whose removed-words list would not fit a block's
// shared memory (over ~390000 boxes).
at::Tensor keep_on_host(const at::Tensor& mask, int64_t n, int64_t words) {
  const at::Tensor host = mask.cpu();
  return at::tensor(nms_greedy::kept_rows(reinterpret_cast<const uint64_t*>(host.data_ptr<int64_t>()), n, words),
                    at::TensorOptions().dtype(at::kLong));
}

}  // namespace

at::Tensor nms_kernel(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  TORCH_CHECK(boxes.is_cuda() && scores.is_cuda(), "nms_kernel: boxes and scores must be on a CUDA device");
  if (boxes.numel() == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const c10::cuda::CUDAGuard guard(boxes.device());
  // Stable descending order, as the ATen path sorts.
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const at::ScalarType type = boxes.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor sorted = boxes.index_select(0, order).to(type).contiguous();
  const int64_t n = sorted.size(0);
  const int64_t words = (n + kBoxesPerWord - 1) / kBoxesPerWord;
  at::Tensor mask = at::empty({n, words}, boxes.options().dtype(at::kLong));
  const dim3 blocks(static_cast<unsigned>(words), static_cast<unsigned>(words));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  auto* mask_ptr = reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>());
  if (type == at::kDouble)
    overlap_mask<double><<<blocks, kBoxesPerWord, 0, stream>>>(n, words, iou_threshold, sorted.data_ptr<double>(),
                                                               mask_ptr);
  else
    overlap_mask<float><<<blocks, kBoxesPerWord, 0, stream>>>(n, words, static_cast<float>(iou_threshold),
                                                              sorted.data_ptr<float>(), mask_ptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // The greedy pass on the GPU, in one block: the mask (n x n/64 words, 12.5 MB for the 10000
  // proposals of a training image) stays on the device, and only the kept count crosses.
  const int64_t shared_bytes = words * static_cast<int64_t>(sizeof(uint64_t));
  if (shared_bytes > kMaxSharedBytes) return order.index_select(0, keep_on_host(mask, n, words).to(boxes.device()));
  at::Tensor keep = at::empty({n}, boxes.options().dtype(at::kBool));
  const int threads = static_cast<int>(std::clamp<int64_t>((words + 31) / 32 * 32, kBoxesPerWord, 1024));
  greedy_keep<<<1, threads, static_cast<size_t>(shared_bytes), stream>>>(
      n, words, reinterpret_cast<const uint64_t*>(mask.data_ptr<int64_t>()), keep.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return order.index_select(0, at::nonzero(keep).squeeze(1));
}

}  // namespace mrcnn::ops::cuda
