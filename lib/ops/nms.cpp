#include "ops/nms.h"

#include <ATen/ATen.h>

#include "ops/aten/nms_aten.h"
#include "ops/cpu/nms_kernel.h"
#include "ops/reduced_precision.h"
#if MRCNN_WITH_CUDA_KERNELS
#include "ops/cuda/nms_kernel.h"
#endif

namespace mrcnn::ops {

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms: boxes must be (N, 4), got ", boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0), "nms: scores must be (N,), got ", scores.sizes());
  // bf16/fp16 (autocast) in float32, as torchvision's autocast rule for nms does.
  if (is_reduced_precision(boxes) || is_reduced_precision(scores))
    return nms(boxes.to(at::kFloat), scores.to(at::kFloat), iou_threshold);
#if MRCNN_WITH_CUDA_KERNELS
  if (boxes.is_cuda()) return cuda::nms_kernel(boxes, scores, iou_threshold);
#endif
  if (!boxes.device().is_cpu()) return aten::nms(boxes, scores, iou_threshold);
  return cpu::nms_kernel(boxes, scores, iou_threshold);
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups,
                       double iou_threshold) {
  if (boxes.numel() == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  if (is_reduced_precision(boxes) || is_reduced_precision(scores))  // the offsets below need float32
    return batched_nms(boxes.to(at::kFloat), scores.to(at::kFloat), groups, iou_threshold);
  // torchvision's choice, kept for identical results: many boxes -> one NMS per group; few ->
  // one NMS with the groups moved apart by an offset larger than any coordinate.
  const int64_t vanilla_above = boxes.is_cuda() ? 100000 : 4000;
  if (boxes.numel() > vanilla_above) {
    at::Tensor keep_mask = at::zeros_like(scores, scores.options().dtype(at::kBool));
    const at::Tensor unique_groups = std::get<0>(at::_unique(groups));
    for (int64_t i = 0; i < unique_groups.size(0); ++i) {
      const at::Tensor current = at::where(groups == unique_groups[i])[0];
      const at::Tensor kept = nms(boxes.index_select(0, current), scores.index_select(0, current), iou_threshold);
      keep_mask.index_fill_(0, current.index_select(0, kept), true);
    }
    const at::Tensor keep = at::where(keep_mask)[0];
    return keep.index_select(0, std::get<1>(scores.index_select(0, keep).sort(/*stable=*/false, 0, true)));
  }
  const at::Tensor max_coordinate = boxes.max();
  const at::Tensor offsets = groups.to(boxes.scalar_type()) * (max_coordinate + 1);
  return nms(boxes + offsets.unsqueeze(1), scores, iou_threshold);
}

}  // namespace mrcnn::ops
