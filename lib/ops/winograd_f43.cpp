#include "ops/winograd_f43.h"

#include <algorithm>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace mrcnn::ops {

namespace {

// F(4x4, 3x3) (Lavin & Gray): each 6x6 input tile gives a 4x4 output tile through 36 products
// per channel pair instead of 144. Tiles are transformed a block at a time so that the transformed
// input and the products stay in cache between the three steps.
constexpr int64_t kOutTile = 4;
constexpr int64_t kInTile = 6;
constexpr int64_t kPoints = kInTile * kInTile;
constexpr int64_t kTilesPerBlock = 96;  // 128 and 512 measured the same on P2; small maps want less
constexpr int64_t kChannelBlock = 64;   // channels transformed together: the inner, vectorised loop

// The transforms' loops vectorise; built for the CPU's widest vectors where it has them (the
// library itself targets baseline x86-64, whose 4-float vectors would leave them at a quarter).
// (arch= names in target_clones need GCC 12; clang and older GCC build the baseline alone.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__gnu_linux__)
#define MRCNN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MRCNN_VECTOR_CLONES
#endif

// Bᵀ applied to six vectors d[0..5] (stride ds apart, n floats each) into r[0..5] (stride rs).
MRCNN_VECTOR_CLONES void input_rows(const float* d, int64_t ds, float* r, int64_t rs, int64_t n) {
  const float *d0 = d, *d1 = d + ds, *d2 = d + 2 * ds, *d3 = d + 3 * ds, *d4 = d + 4 * ds, *d5 = d + 5 * ds;
  float *r0 = r, *r1 = r + rs, *r2 = r + 2 * rs, *r3 = r + 3 * rs, *r4 = r + 4 * rs, *r5 = r + 5 * rs;
  for (int64_t c = 0; c < n; ++c) {
    const float a = d1[c], b = d2[c], e = d3[c], f = d4[c];
    r0[c] = 4 * d0[c] - 5 * b + f;
    r1[c] = -4 * (a + b) + e + f;
    r2[c] = 4 * (a - b) - e + f;
    r3[c] = 2 * (e - a) - b + f;
    r4[c] = 2 * (a - e) - b + f;
    r5[c] = 4 * a - 5 * e + d5[c];
  }
}

// Aᵀ applied to six vectors m[0..5] (stride ms apart) into r[0..3] (stride rs).
MRCNN_VECTOR_CLONES void output_rows(const float* m, int64_t ms, float* r, int64_t rs, int64_t n) {
  const float *m0 = m, *m1 = m + ms, *m2 = m + 2 * ms, *m3 = m + 3 * ms, *m4 = m + 4 * ms, *m5 = m + 5 * ms;
  float *r0 = r, *r1 = r + rs, *r2 = r + 2 * rs, *r3 = r + 3 * rs;
  for (int64_t c = 0; c < n; ++c) {
    const float p12 = m1[c] + m2[c], d12 = m1[c] - m2[c], p34 = m3[c] + m4[c], d34 = m3[c] - m4[c];
    r0[c] = m0[c] + p12 + p34;
    r1[c] = d12 + 2 * d34;
    r2[c] = p12 + 4 * p34;
    r3[c] = d12 + 8 * d34 + m5[c];
  }
}

// The output tiles over a channels-last (N, H, W, C) map: tile t is image t / per_image, row
// (t % per_image) / columns, column (t % per_image) % columns.
struct TileGrid {
  int64_t images, height, width, rows, columns;
  int64_t per_image() const { return rows * columns; }
  int64_t count() const { return images * per_image(); }
  // The image and the top-left output pixel of tile t.
  std::tuple<int64_t, int64_t, int64_t> origin(int64_t t) const {
    const int64_t within = t % per_image();
    return {t / per_image(), within / columns * kOutTile, within % columns * kOutTile};
  }
};

// Tiles [first, first + count) of x (channels-last, C channels) into v (36, count, C).
void transform_input(const float* x, int64_t channels, const TileGrid& grid, int64_t first, int64_t count, float* v) {
  at::parallel_for(0, count, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> tile(kPoints * kChannelBlock), rows(kPoints * kChannelBlock), points(kPoints * kChannelBlock);
    for (int64_t i = begin; i < end; ++i) {
      const auto [image, top, left] = grid.origin(first + i);
      for (int64_t c0 = 0; c0 < channels; c0 += kChannelBlock) {
        const int64_t n = std::min(kChannelBlock, channels - c0);
        for (int64_t r = 0; r < kInTile; ++r)
          for (int64_t s = 0; s < kInTile; ++s) {  // padding 1: the tile starts one pixel up and left
            float* dst = tile.data() + (r * kInTile + s) * kChannelBlock;
            const int64_t y = top + r - 1, xx = left + s - 1;
            if (y < 0 || y >= grid.height || xx < 0 || xx >= grid.width)
              std::fill(dst, dst + n, 0.f);
            else
              std::copy_n(x + ((image * grid.height + y) * grid.width + xx) * channels + c0, n, dst);
          }
        for (int64_t s = 0; s < kInTile; ++s)  // down the columns, then along the rows
          input_rows(tile.data() + s * kChannelBlock, kInTile * kChannelBlock, rows.data() + s * kChannelBlock,
                     kInTile * kChannelBlock, n);
        for (int64_t r = 0; r < kInTile; ++r)
          input_rows(rows.data() + r * kInTile * kChannelBlock, kChannelBlock,
                     points.data() + r * kInTile * kChannelBlock, kChannelBlock, n);
        for (int64_t p = 0; p < kPoints; ++p)
          std::copy_n(points.data() + p * kChannelBlock, n, v + (p * count + i) * channels + c0);
      }
    }
  });
}

// The products m (36, count, O) of tiles [first, first + count) back into y (channels-last), plus
// the bias and the activation.
void transform_output(const float* m, const float* bias, bool relu, int64_t channels,
                      const TileGrid& grid, int64_t first, int64_t count, float* y) {
  at::parallel_for(0, count, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> points(kPoints * kChannelBlock), rows(kOutTile * kInTile * kChannelBlock),
        out(kOutTile * kOutTile * kChannelBlock);
    for (int64_t i = begin; i < end; ++i) {
      const auto [image, top, left] = grid.origin(first + i);
      for (int64_t c0 = 0; c0 < channels; c0 += kChannelBlock) {
        const int64_t n = std::min(kChannelBlock, channels - c0);
        for (int64_t p = 0; p < kPoints; ++p)
          std::copy_n(m + (p * count + i) * channels + c0, n, points.data() + p * kChannelBlock);
        for (int64_t s = 0; s < kInTile; ++s)
          output_rows(points.data() + s * kChannelBlock, kInTile * kChannelBlock, rows.data() + s * kChannelBlock,
                      kInTile * kChannelBlock, n);
        for (int64_t a = 0; a < kOutTile; ++a)
          output_rows(rows.data() + a * kInTile * kChannelBlock, kChannelBlock,
                      out.data() + a * kOutTile * kChannelBlock, kChannelBlock, n);
        for (int64_t a = 0; a < kOutTile; ++a)
          for (int64_t b = 0; b < kOutTile; ++b) {
            if (top + a >= grid.height || left + b >= grid.width) continue;  // the map's ragged edge
            const float* src = out.data() + (a * kOutTile + b) * kChannelBlock;
            float* dst = y + ((image * grid.height + top + a) * grid.width + left + b) * channels + c0;
            for (int64_t c = 0; c < n; ++c) dst[c] = src[c] + bias[c0 + c];
            if (relu)
              for (int64_t c = 0; c < n; ++c) dst[c] = std::max(dst[c], 0.f);
          }
      }
    }
  });
}

// G g Gᵀ of each (O, C) 3x3 kernel as (36, C, O), computed in float64.
at::Tensor transform_kernel(const at::Tensor& weight) {
  const at::Tensor g = at::tensor({1. / 4, 0., 0., -1. / 6, -1. / 6, -1. / 6, -1. / 6, 1. / 6, -1. / 6, 1. / 24,
                                   1. / 12, 1. / 6, 1. / 24, -1. / 12, 1. / 6, 0., 0., 1.},
                                  at::kDouble)
                           .view({kInTile, 3});
  const at::Tensor u = at::einsum("ij,ocjk,lk->ilco", {g, weight.to(at::kDouble), g});
  return u.reshape({kPoints, weight.size(1), weight.size(0)}).to(at::kFloat).contiguous();
}

// Transformed kernels by weight tensor, so that each is computed once per weight value: the weight
// is recognised by its TensorImpl (held weakly, so a freed one never matches a new one at the same
// address), its data and its version (bumped by in-place updates, e.g. training between validations).
class KernelCache {
 public:
  at::Tensor get(const at::Tensor& weight) {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint32_t version = weight._version();
    const auto found = entries_.find(weight.unsafeGetTensorImpl());
    if (found != entries_.end() && found->second.weight.lock().get() == weight.unsafeGetTensorImpl() &&
        found->second.data == weight.data_ptr() && found->second.version == version)
      return found->second.transformed;
    // A miss: forget the kernels of weights that are gone, then keep this one.
    for (auto it = entries_.begin(); it != entries_.end();) it = it->second.weight.expired() ? entries_.erase(it) : ++it;
    Entry entry{WeakImpl(weight.getIntrusivePtr()), weight.data_ptr(), version, transform_kernel(weight)};
    entries_.insert_or_assign(weight.unsafeGetTensorImpl(), entry);
    return entry.transformed;
  }

 private:
  using WeakImpl = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Entry {
    WeakImpl weight;
    const void* data = nullptr;
    uint32_t version = 0;
    at::Tensor transformed;
  };
  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
};

at::Tensor transformed_kernel(const at::Tensor& weight) {
  static KernelCache cache;
  return cache.get(weight);
}

// The Winograd convolution of a channels-last float map; the result channels-last.
at::Tensor winograd_f43_channels_last(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool relu) {
  const int64_t channels = x.size(1), outputs = weight.size(0);
  const TileGrid grid{x.size(0), x.size(2), x.size(3), (x.size(2) + kOutTile - 1) / kOutTile,
                      (x.size(3) + kOutTile - 1) / kOutTile};
  const at::Tensor kernel = transformed_kernel(weight);
  const at::Tensor bias_values = bias.defined() ? bias.contiguous() : at::zeros({outputs}, x.options());
  at::Tensor y = at::empty({grid.images, outputs, grid.height, grid.width},
                           x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const int64_t block = std::min(kTilesPerBlock, grid.count());
  const at::Tensor v = at::empty({kPoints, block, channels}, x.options());
  const at::Tensor m = at::empty({kPoints, block, outputs}, x.options());
  for (int64_t first = 0; first < grid.count(); first += block) {
    const int64_t count = std::min(block, grid.count() - first);
    // The last, shorter block uses the front of the buffers as (36, count, .) matrices.
    const at::Tensor vb = v.flatten().narrow(0, 0, kPoints * count * channels).view({kPoints, count, channels});
    at::Tensor mb = m.flatten().narrow(0, 0, kPoints * count * outputs).view({kPoints, count, outputs});
    transform_input(x.data_ptr<float>(), channels, grid, first, count, vb.data_ptr<float>());
    at::bmm_out(mb, vb, kernel);
    transform_output(mb.data_ptr<float>(), bias_values.data_ptr<float>(), relu, outputs, grid, first, count,
                     y.data_ptr<float>());
  }
  return y;
}

}  // namespace

at::Tensor winograd_f43_conv3x3(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, bool relu) {
  TORCH_CHECK(input.device().is_cpu() && input.scalar_type() == at::kFloat && input.dim() == 4,
              "winograd_f43_conv3x3: a CPU float32 (N, C, H, W) input");
  TORCH_CHECK(weight.scalar_type() == at::kFloat && weight.dim() == 4 && weight.size(1) == input.size(1) &&
                  weight.size(2) == 3 && weight.size(3) == 3,
              "winograd_f43_conv3x3: a float32 (O, C, 3, 3) weight");
  TORCH_CHECK(!at::GradMode::is_enabled() || !(input.requires_grad() || weight.requires_grad()),
              "winograd_f43_conv3x3: inference only (no gradient)");
  TORCH_CHECK(!bias.defined() || bias.numel() == weight.size(0), "winograd_f43_conv3x3: one bias per output channel");
  // The kernel cache recognises a changed weight by its version counter, which inference tensors lack.
  TORCH_CHECK(!weight.is_inference(), "winograd_f43_conv3x3: a weight made outside InferenceMode");
  return winograd_f43_channels_last(input.contiguous(at::MemoryFormat::ChannelsLast), weight, bias, relu);
}

}  // namespace mrcnn::ops
