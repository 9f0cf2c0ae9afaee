#include "ops/paste_masks.h"

#include <torch/nn/functional.h>
#include <torch/torch.h>

#include <algorithm>

#if MRCNN_WITH_CUDA_KERNELS
#include "ops/cuda/paste_masks_kernel.h"
#endif

namespace mrcnn::ops {
namespace F = torch::nn::functional;

std::vector<MaskPlacement> mask_placements(const at::Tensor& boxes, int64_t mask_size, int64_t image_h,
                                           int64_t image_w) {
  const int64_t count = boxes.size(0);
  std::vector<MaskPlacement> placements(count);
  if (count == 0) return placements;
  // Grow each box by the padding's share (torchvision's expand_boxes), in the boxes' precision.
  constexpr int64_t kPadding = 1;
  const double scale = static_cast<double>(mask_size + 2 * kPadding) / mask_size;
  const at::Tensor w_half = (boxes.select(1, 2) - boxes.select(1, 0)) * 0.5 * scale;
  const at::Tensor h_half = (boxes.select(1, 3) - boxes.select(1, 1)) * 0.5 * scale;
  const at::Tensor x_c = (boxes.select(1, 2) + boxes.select(1, 0)) * 0.5;
  const at::Tensor y_c = (boxes.select(1, 3) + boxes.select(1, 1)) * 0.5;
  const at::Tensor expanded =
      torch::stack({x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half}, 1).to(torch::kLong).cpu();
  const auto box = expanded.accessor<int64_t, 2>();
  for (int64_t i = 0; i < count; ++i) {
    MaskPlacement& p = placements[i];
    p.x0 = box[i][0];
    p.y0 = box[i][1];
    p.w = std::max<int64_t>(box[i][2] - p.x0 + 1, 1);
    p.h = std::max<int64_t>(box[i][3] - p.y0 + 1, 1);
    p.cx0 = std::max<int64_t>(p.x0, 0);
    p.cy0 = std::max<int64_t>(p.y0, 0);
    p.cw = std::max<int64_t>(std::min<int64_t>(box[i][2] + 1, image_w) - p.cx0, 0);
    p.ch = std::max<int64_t>(std::min<int64_t>(box[i][3] + 1, image_h) - p.cy0, 0);
    if (p.cw == 0 || p.ch == 0) p.cw = p.ch = 0;
  }
  return placements;
}

at::Tensor pasted_mask_probs(const at::Tensor& mask, const MaskPlacement& p) {
  if (p.cw == 0) return torch::zeros({0, 0}, mask.options());
  constexpr int64_t kPadding = 1;
  const at::Tensor padded = F::pad(mask.reshape({1, 1, mask.size(-2), mask.size(-1)}),
                                   F::PadFuncOptions({kPadding, kPadding, kPadding, kPadding}));
  // F.interpolate(size=(h, w), mode="bilinear", align_corners=False) is this op.
  const at::Tensor resized = at::upsample_bilinear2d(padded, {p.h, p.w}, /*align_corners=*/false)[0][0];
  return resized.narrow(0, p.cy0 - p.y0, p.ch).narrow(1, p.cx0 - p.x0, p.cw);
}

at::Tensor paste_masks_binary(const at::Tensor& masks, const std::vector<MaskPlacement>& placements,
                              double threshold) {
  const int64_t count = static_cast<int64_t>(placements.size());
  TORCH_CHECK(masks.size(0) == count, "paste_masks_binary: ", masks.size(0), " masks for ", count, " placements");
  std::vector<int64_t> offsets(count);
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) {
    offsets[i] = total;
    total += placements[i].cw * placements[i].ch;
  }
  const int64_t m = masks.size(-1);
  const at::Tensor square = masks.reshape({count, m, m});
#if MRCNN_WITH_CUDA_KERNELS
  if (square.is_cuda() && square.scalar_type() == at::kFloat && count > 0) {
    at::Tensor rows = torch::empty({count, 8}, torch::kLong);
    auto r = rows.accessor<int64_t, 2>();
    for (int64_t i = 0; i < count; ++i) {
      const MaskPlacement& p = placements[i];
      const int64_t values[8] = {p.x0, p.y0, p.w, p.h, p.cx0, p.cy0, p.cw, p.ch};
      for (int k = 0; k < 8; ++k) r[i][k] = values[k];
    }
    const at::Tensor starts = torch::from_blob(offsets.data(), {count}, torch::kLong).clone();
    return cuda::paste_masks_kernel(square, rows, starts, total, threshold).cpu();
  }
#endif
  at::Tensor out = torch::empty({total}, square.options().dtype(torch::kUInt8));
  for (int64_t i = 0; i < count; ++i) {
    if (placements[i].cw == 0) continue;
    out.narrow(0, offsets[i], placements[i].cw * placements[i].ch)
        .copy_(pasted_mask_probs(square[i], placements[i]).gt(threshold).reshape({-1}));
  }
  return out.cpu();
}

}  // namespace mrcnn::ops
