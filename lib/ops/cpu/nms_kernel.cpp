#include "ops/cpu/nms_kernel.h"

#include <ATen/ATen.h>

namespace mrcnn::ops::cpu {
namespace {

template <typename T>
at::Tensor nms_impl(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  const int64_t n = boxes.size(0);
  const at::Tensor x1_t = boxes.select(1, 0).contiguous();
  const at::Tensor y1_t = boxes.select(1, 1).contiguous();
  const at::Tensor x2_t = boxes.select(1, 2).contiguous();
  const at::Tensor y2_t = boxes.select(1, 3).contiguous();
  const at::Tensor areas_t = (x2_t - x1_t) * (y2_t - y1_t);
  const at::Tensor order_t = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  at::Tensor suppressed_t = at::zeros({n}, boxes.options().dtype(at::kByte));
  at::Tensor keep_t = at::zeros({n}, boxes.options().dtype(at::kLong));

  const T* x1 = x1_t.data_ptr<T>();
  const T* y1 = y1_t.data_ptr<T>();
  const T* x2 = x2_t.data_ptr<T>();
  const T* y2 = y2_t.data_ptr<T>();
  const T* areas = areas_t.data_ptr<T>();
  const int64_t* order = order_t.data_ptr<int64_t>();
  uint8_t* suppressed = suppressed_t.data_ptr<uint8_t>();
  int64_t* keep = keep_t.data_ptr<int64_t>();

  int64_t kept = 0;
  for (int64_t oi = 0; oi < n; ++oi) {
    const int64_t i = order[oi];
    if (suppressed[i]) continue;
    keep[kept++] = i;
    const T ix1 = x1[i], iy1 = y1[i], ix2 = x2[i], iy2 = y2[i], iarea = areas[i];
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      const int64_t j = order[oj];
      if (suppressed[j]) continue;
      const T w = std::max(static_cast<T>(0), std::min(ix2, x2[j]) - std::max(ix1, x1[j]));
      const T h = std::max(static_cast<T>(0), std::min(iy2, y2[j]) - std::max(iy1, y1[j]));
      const T inter = w * h;
      const T iou = inter / (iarea + areas[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep_t.narrow(0, 0, kept);
}

}  // namespace

at::Tensor nms_kernel(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  if (boxes.numel() == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  at::Tensor result;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms_kernel", [&] {
    result = nms_impl<scalar_t>(boxes.contiguous(), scores.contiguous(), iou_threshold);
  });
  return result;
}

}  // namespace mrcnn::ops::cpu
