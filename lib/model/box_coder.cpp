#include "model/box_coder.h"

#include <ATen/ATen.h>

namespace mrcnn::model {
using at::indexing::None;
using at::indexing::Slice;

at::Tensor BoxCoder::decode(const at::Tensor& rel_codes, const at::Tensor& reference) const {
  const at::Tensor boxes = reference.to(rel_codes.scalar_type());
  const at::Tensor widths = boxes.select(1, 2) - boxes.select(1, 0);
  const at::Tensor heights = boxes.select(1, 3) - boxes.select(1, 1);
  const at::Tensor ctr_x = boxes.select(1, 0) + 0.5 * widths;
  const at::Tensor ctr_y = boxes.select(1, 1) + 0.5 * heights;

  const at::Tensor dx = rel_codes.index({Slice(), Slice(0, None, 4)}) / weights_[0];
  const at::Tensor dy = rel_codes.index({Slice(), Slice(1, None, 4)}) / weights_[1];
  const at::Tensor dw = (rel_codes.index({Slice(), Slice(2, None, 4)}) / weights_[2]).clamp_max(clip_);
  const at::Tensor dh = (rel_codes.index({Slice(), Slice(3, None, 4)}) / weights_[3]).clamp_max(clip_);

  const at::Tensor pred_ctr_x = dx * widths.unsqueeze(1) + ctr_x.unsqueeze(1);
  const at::Tensor pred_ctr_y = dy * heights.unsqueeze(1) + ctr_y.unsqueeze(1);
  const at::Tensor pred_w = at::exp(dw) * widths.unsqueeze(1);
  const at::Tensor pred_h = at::exp(dh) * heights.unsqueeze(1);
  const at::Tensor half_w = 0.5 * pred_w;
  const at::Tensor half_h = 0.5 * pred_h;
  return at::stack({pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h}, 2);
}

at::Tensor BoxCoder::encode(const at::Tensor& matched, const at::Tensor& proposals) const {
  const at::Tensor ex_widths = proposals.select(1, 2) - proposals.select(1, 0);
  const at::Tensor ex_heights = proposals.select(1, 3) - proposals.select(1, 1);
  const at::Tensor ex_ctr_x = proposals.select(1, 0) + 0.5 * ex_widths;
  const at::Tensor ex_ctr_y = proposals.select(1, 1) + 0.5 * ex_heights;
  const at::Tensor gt_widths = matched.select(1, 2) - matched.select(1, 0);
  const at::Tensor gt_heights = matched.select(1, 3) - matched.select(1, 1);
  const at::Tensor gt_ctr_x = matched.select(1, 0) + 0.5 * gt_widths;
  const at::Tensor gt_ctr_y = matched.select(1, 1) + 0.5 * gt_heights;
  return at::stack({weights_[0] * (gt_ctr_x - ex_ctr_x) / ex_widths, weights_[1] * (gt_ctr_y - ex_ctr_y) / ex_heights,
                    weights_[2] * at::log(gt_widths / ex_widths), weights_[3] * at::log(gt_heights / ex_heights)},
                   1);
}

}  // namespace mrcnn::model
