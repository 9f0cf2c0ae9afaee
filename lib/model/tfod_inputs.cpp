#include "model/tfod_inputs.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace mrcnn::model {
namespace {

// The source index of each destination index along one axis, as TF's LegacyScaler computes it.
at::Tensor nearest_sources(int64_t in, int64_t out, const at::Device& device) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const at::Tensor positions = at::arange(out, at::TensorOptions(device).dtype(at::kFloat)) * scale;
  return at::clamp_max(at::floor(positions).to(at::kLong), in - 1);
}

// One axis of a box through the frames: y / size, then change_coordinate_frame's 1 / (padded /
// resized), then to_absolute_coordinates' padded (each a float32 operation, as in TF).
at::Tensor reframe(const at::Tensor& y, int64_t size, int64_t resized, int64_t padded) {
  const float window = static_cast<float>(padded) / static_cast<float>(resized);
  return (y / static_cast<float>(size)) * (1.0f / window) * static_cast<float>(padded);
}

}  // namespace

at::Tensor tf_resize_nearest(const at::Tensor& masks, int64_t height, int64_t width) {
  if (masks.dim() != 3) throw Error("tf_resize_nearest: expected masks (N, H, W)");
  const at::Tensor rows = nearest_sources(masks.size(1), height, masks.device());
  const at::Tensor columns = nearest_sources(masks.size(2), width, masks.device());
  return masks.index_select(1, rows).index_select(2, columns);
}

TfodGroundtruth tfod_frame_groundtruth(const at::Tensor& boxes, const at::Tensor& labels,
                                               const at::Tensor& masks, int64_t image_height, int64_t image_width,
                                               const ResizedShape& resized, const ResizedShape& padded) {
  if (boxes.dim() != 2 || boxes.size(1) != 4 || labels.size(0) != boxes.size(0))
    throw Error("TF OD API groundtruth: expected boxes (N, 4) and N labels");
  const at::Tensor xyxy = boxes.to(at::kFloat);
  const at::Tensor y1 = reframe(xyxy.select(1, 1), image_height, resized.height, padded.height);
  const at::Tensor x1 = reframe(xyxy.select(1, 0), image_width, resized.width, padded.width);
  const at::Tensor y2 = reframe(xyxy.select(1, 3), image_height, resized.height, padded.height);
  const at::Tensor x2 = reframe(xyxy.select(1, 2), image_width, resized.width, padded.width);
  TfodGroundtruth out;
  out.boxes = at::stack({y1, x1, y2, x2}, 1);
  out.classes = labels.to(at::kLong);
  if (masks.defined()) {
    const at::Tensor resized_masks = tf_resize_nearest(masks, resized.height, resized.width).to(at::kFloat);
    out.masks = at::constant_pad_nd(
        resized_masks, {0, padded.width - resized.width, 0, padded.height - resized.height}, 0.0);
  }
  return out;
}

}  // namespace mrcnn::model
