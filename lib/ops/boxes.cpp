#include "ops/boxes.h"

#include <ATen/ATen.h>

namespace mrcnn::ops {

at::Tensor box_area(const at::Tensor& boxes) {
  return (boxes.select(1, 2) - boxes.select(1, 0)) * (boxes.select(1, 3) - boxes.select(1, 1));
}

at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2) {
  const at::Tensor area1 = box_area(boxes1);
  const at::Tensor area2 = box_area(boxes2);
  const at::Tensor lt = at::max(boxes1.index({at::indexing::Slice(), at::indexing::None, at::indexing::Slice(0, 2)}),
                                boxes2.index({at::indexing::Slice(), at::indexing::Slice(0, 2)}));
  const at::Tensor rb = at::min(boxes1.index({at::indexing::Slice(), at::indexing::None, at::indexing::Slice(2, 4)}),
                                boxes2.index({at::indexing::Slice(), at::indexing::Slice(2, 4)}));
  const at::Tensor wh = (rb - lt).clamp_min(0);
  const at::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
  const at::Tensor uni = area1.unsqueeze(1) + area2.unsqueeze(0) - inter;
  return inter / uni;
}

at::Tensor clip_boxes_to_image(const at::Tensor& boxes, std::pair<int64_t, int64_t> image_size) {
  const auto [height, width] = image_size;
  const at::Tensor xs = boxes.index({"...", at::indexing::Slice(0, at::indexing::None, 2)}).clamp(0, width);
  const at::Tensor ys = boxes.index({"...", at::indexing::Slice(1, at::indexing::None, 2)}).clamp(0, height);
  return at::stack({xs, ys}, boxes.dim()).reshape(boxes.sizes());
}

at::Tensor large_enough(const at::Tensor& boxes, double min_size) {
  const at::Tensor ws = boxes.select(1, 2) - boxes.select(1, 0);
  const at::Tensor hs = boxes.select(1, 3) - boxes.select(1, 1);
  return (ws >= min_size).logical_and_(hs >= min_size);
}

at::Tensor remove_small_boxes(const at::Tensor& boxes, double min_size) {
  return at::where(large_enough(boxes, min_size))[0];
}

}  // namespace mrcnn::ops
