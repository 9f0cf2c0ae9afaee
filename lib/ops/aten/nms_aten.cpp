#include "ops/aten/nms_aten.h"

#include <ATen/ATen.h>

#include "ops/boxes.h"

namespace mrcnn::ops::aten {

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  if (boxes.numel() == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const at::Tensor sorted = boxes.index_select(0, order);
  // Which (higher-scored i, lower-scored j) pairs overlap too much, computed on the device.
  const at::Tensor overlaps = (box_iou(sorted, sorted) > iou_threshold).triu(1).to(at::kByte).cpu().contiguous();
  const int64_t n = sorted.size(0);
  const uint8_t* over = overlaps.data_ptr<uint8_t>();
  std::vector<uint8_t> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (suppressed[i]) continue;
    keep.push_back(i);
    const uint8_t* row = over + i * n;
    for (int64_t j = i + 1; j < n; ++j) suppressed[j] |= row[j];
  }
  const at::Tensor kept = at::tensor(keep, at::TensorOptions().dtype(at::kLong)).to(boxes.device());
  return order.index_select(0, kept);
}

}  // namespace mrcnn::ops::aten
