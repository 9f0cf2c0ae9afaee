#include "model/tfod_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mrcnn::model {

namespace {

// Python's / TF's round half to even of a float32 value.
int64_t round_half_even(float value) { return static_cast<int64_t>(std::nearbyint(value)); }

}  // namespace

ResizedShape tfod_resized_shape(const TfodResizer& resizer, int64_t height, int64_t width) {
  if (!resizer.keep_aspect) return {resizer.height, resizer.width};
  const bool landscape = height < width;
  const float target_h = static_cast<float>(landscape ? resizer.min_dimension : resizer.max_dimension);
  const float target_w = static_cast<float>(landscape ? resizer.max_dimension : resizer.min_dimension);
  const float scale =
      std::min(target_h / static_cast<float>(height), target_w / static_cast<float>(width));
  return {round_half_even(scale * static_cast<float>(height)), round_half_even(scale * static_cast<float>(width))};
}

void tfod_check_image_size(const TfodResizer& resizer, int64_t height, int64_t width) {
  const ResizedShape resized = tfod_resized_shape(resizer, height, width);
  if (resized.height >= 1 && resized.width >= 1) return;
  throw Error("image of " + std::to_string(width) + "x" + std::to_string(height) +
              " pixels is too elongated for the model: model.tf.resizer keep_aspect_ratio (min_dimension " +
              std::to_string(resizer.min_dimension) + ", max_dimension " + std::to_string(resizer.max_dimension) +
              ") resizes it to " + std::to_string(resized.width) + "x" + std::to_string(resized.height) + " pixels");
}

ResizedShape tfod_padded_shape(const TfodResizer& resizer, const ResizedShape& resized) {
  if (resizer.keep_aspect && resizer.pad_to_max_dimension) return {resizer.max_dimension, resizer.max_dimension};
  return resized;
}

namespace {

// One axis of a bilinear sampling grid, (N, size) each: the two input indices each output position
// interpolates between (clamped into the input), the weight of the second, and whether the
// position lies inside the input (outside: the extrapolation value).
struct AxisSampling {
  at::Tensor low, high, lerp, inside;
};

AxisSampling sampling_at(const at::Tensor& positions, int64_t in_size) {
  const at::Tensor low = at::floor(positions);
  return {low.clamp(0, in_size - 1).to(at::kLong), at::ceil(positions).clamp(0, in_size - 1).to(at::kLong),
          positions - low, (positions >= 0) & (positions <= static_cast<double>(in_size - 1))};
}

// crop_and_resize's source positions along one axis for boxes from `start` to `end` (N, normalised).
at::Tensor crop_positions(const at::Tensor& start, const at::Tensor& end, int64_t in_size, int64_t out_size) {
  const double last = static_cast<double>(in_size - 1);
  if (out_size == 1) return ((start + end) * 0.5 * last).unsqueeze(1);
  const at::Tensor spacing = ((end - start) * last) / static_cast<double>(out_size - 1);
  const at::Tensor steps = at::arange(out_size, start.options());
  return (start * last).unsqueeze(1) + steps.unsqueeze(0) * spacing.unsqueeze(1);
}

// Rows of `flat` (B*H*W, C) at (y, x) of image `image` for each box: (n, out_h, out_w, C).
at::Tensor gather_corner(const at::Tensor& flat, const at::Tensor& image_base, const at::Tensor& y,
                         const at::Tensor& x, int64_t width) {
  const at::Tensor index = image_base.view({-1, 1, 1}) + y.unsqueeze(2) * width + x.unsqueeze(1);
  return flat.index_select(0, index.reshape(-1)).view({y.size(0), y.size(1), x.size(1), flat.size(1)});
}

// TF's bilinear combination, top + (bottom - top) * y_lerp with each row top_left + (top_right -
// top_left) * x_lerp, for boxes [begin, end): (n, out_h, out_w, C).
at::Tensor sample_chunk(const at::Tensor& flat, const at::Tensor& image_base, const AxisSampling& ys,
                        const AxisSampling& xs, int64_t width, double extrapolation) {
  const int64_t n = ys.low.size(0), out_h = ys.low.size(1), out_w = xs.low.size(1);
  const at::Tensor x_lerp = xs.lerp.view({n, 1, out_w, 1});
  at::Tensor top = gather_corner(flat, image_base, ys.low, xs.low, width);
  top.add_(gather_corner(flat, image_base, ys.low, xs.high, width).sub_(top).mul_(x_lerp));
  at::Tensor bottom = gather_corner(flat, image_base, ys.high, xs.low, width);
  bottom.add_(gather_corner(flat, image_base, ys.high, xs.high, width).sub_(bottom).mul_(x_lerp));
  top.add_(bottom.sub_(top).mul_(ys.lerp.view({n, out_h, 1, 1})));
  const at::Tensor inside = ys.inside.view({n, out_h, 1, 1}) & xs.inside.view({n, 1, out_w, 1});
  return top.masked_fill_(inside.logical_not(), extrapolation);
}

AxisSampling slice(const AxisSampling& s, int64_t begin, int64_t end) {
  return {s.low.slice(0, begin, end), s.high.slice(0, begin, end), s.lerp.slice(0, begin, end),
          s.inside.slice(0, begin, end)};
}

// Whether bilinear_sample_in_one_pass computes this: float32 on the CPU with no gradient to carry.
bool one_pass_applies(const at::Tensor& features, const AxisSampling& ys, const AxisSampling& xs) {
  return features.is_cpu() && features.scalar_type() == at::kFloat && ys.lerp.scalar_type() == at::kFloat &&
         xs.lerp.scalar_type() == at::kFloat && !(at::GradMode::is_enabled() && features.requires_grad());
}

// sample_chunk's float32 arithmetic, operation for operation and in the same order, as one pass
// over the output: each output pixel reads its four corner vectors of the channels-last map
// instead of four gathered copies of the whole output (the mask head's upsampling alone gathered
// 4 x 670 MB per image at the published config).
at::Tensor bilinear_sample_in_one_pass(const at::Tensor& features, const at::Tensor& box_indices,
                                       const AxisSampling& ys, const AxisSampling& xs, double extrapolation) {
  const int64_t channels = features.size(1), height = features.size(2), width = features.size(3);
  const int64_t n = box_indices.size(0), out_h = ys.low.size(1), out_w = xs.low.size(1);
  const at::Tensor maps = features.permute({0, 2, 3, 1}).contiguous();  // (B, H, W, C)
  at::Tensor out = at::empty({n, out_h, out_w, channels}, features.options());
  const at::Tensor image = box_indices.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor y_low = ys.low.contiguous(), y_high = ys.high.contiguous(), y_lerp = ys.lerp.contiguous();
  const at::Tensor x_low = xs.low.contiguous(), x_high = xs.high.contiguous(), x_lerp = xs.lerp.contiguous();
  const at::Tensor inside = (ys.inside.unsqueeze(2) & xs.inside.unsqueeze(1)).contiguous();  // (N, out_h, out_w)
  const float* src = maps.const_data_ptr<float>();
  float* dst = out.mutable_data_ptr<float>();
  const float fill = static_cast<float>(extrapolation);
  at::parallel_for(0, n * out_h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t i = row / out_h, y = row % out_h;
      const int64_t base = image.const_data_ptr<int64_t>()[i] * height;
      const float* top = src + (base + y_low.const_data_ptr<int64_t>()[row]) * width * channels;
      const float* bottom = src + (base + y_high.const_data_ptr<int64_t>()[row]) * width * channels;
      const float y_weight = y_lerp.const_data_ptr<float>()[row];
      for (int64_t x = 0; x < out_w; ++x) {
        float* o = dst + (row * out_w + x) * channels;
        if (!inside.const_data_ptr<bool>()[row * out_w + x]) {
          std::fill(o, o + channels, fill);
          continue;
        }
        const int64_t column = i * out_w + x;
        const int64_t left = x_low.const_data_ptr<int64_t>()[column] * channels;
        const int64_t right = x_high.const_data_ptr<int64_t>()[column] * channels;
        const float x_weight = x_lerp.const_data_ptr<float>()[column];
        for (int64_t c = 0; c < channels; ++c) {
          const float t = top[left + c] + (top[right + c] - top[left + c]) * x_weight;
          const float b = bottom[left + c] + (bottom[right + c] - bottom[left + c]) * x_weight;
          o[c] = t + (b - t) * y_weight;
        }
      }
    }
  });
  return out.permute({0, 3, 1, 2});
}

// Bilinear samples of NCHW `features` on separable grids (one per box): (N, C, out_h, out_w),
// channels-last in memory. In one pass where it applies, else (gradients, float64, CUDA) as ATen
// ops in chunks of boxes so that the corner gathers stay small.
at::Tensor bilinear_sample(const at::Tensor& features, const at::Tensor& box_indices, const AxisSampling& ys,
                           const AxisSampling& xs, double extrapolation) {
  if (one_pass_applies(features, ys, xs)) return bilinear_sample_in_one_pass(features, box_indices, ys, xs, extrapolation);
  const int64_t height = features.size(2), width = features.size(3), channels = features.size(1);
  const at::Tensor flat = features.permute({0, 2, 3, 1}).reshape({-1, channels});
  const int64_t n = box_indices.size(0);
  at::Tensor out = at::empty({n, ys.low.size(1), xs.low.size(1), channels}, features.options());
  const at::Tensor image_base = box_indices.to(features.device(), at::kLong) * (height * width);
  constexpr int64_t kChunk = 16;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    out.slice(0, begin, end)
        .copy_(sample_chunk(flat, image_base.slice(0, begin, end), slice(ys, begin, end), slice(xs, begin, end),
                            width, extrapolation));
  }
  return out.permute({0, 3, 1, 2});
}

}  // namespace

at::Tensor tf_resize_bilinear(const at::Tensor& images, int64_t height, int64_t width, bool align_corners) {
  auto axis = [&](int64_t in_size, int64_t out_size) {
    const float scale = align_corners && out_size > 1 ? static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1)
                                                      : static_cast<float>(in_size) / static_cast<float>(out_size);
    const at::Tensor positions = at::arange(out_size, images.options().dtype(at::kFloat)) * static_cast<double>(scale);
    AxisSampling sampling = sampling_at(positions.unsqueeze(0).expand({images.size(0), out_size}), in_size);
    sampling.inside.fill_(true);  // a resize has no outside: positions past the last pixel take it
    return sampling;
  };
  const at::Tensor index = at::arange(images.size(0), images.options().dtype(at::kLong));
  return bilinear_sample(images, index, axis(images.size(2), height), axis(images.size(3), width), 0.0);
}

namespace {

// tf_resize_bilinear along one axis as an (out, 3 * in) matrix: for each tap offset d = -1, 0, 1
// the rows of the resize shifted by d (out-of-map rows zero: SAME padding), side by side.
at::Tensor shifted_resize_matrix(int64_t in_size, int64_t out_size, bool align_corners,
                                 const at::TensorOptions& options) {
  const at::Tensor one_hot = at::eye(in_size, options).view({1, in_size, in_size, 1});
  const at::Tensor resize = tf_resize_bilinear(one_hot, out_size, 1, align_corners).view({in_size, out_size}).t();
  const at::Tensor padded = at::constant_pad_nd(resize, {0, 0, 1, 1});  // row r + 1 = resize row r
  return at::cat({padded.slice(0, 0, out_size), padded.slice(0, 1, out_size + 1), padded.slice(0, 2, out_size + 2)}, 1);
}

}  // namespace

at::Tensor tf_resize_then_conv3x3(const at::Tensor& x, int64_t height, int64_t width, bool align_corners,
                                  const at::Tensor& weight, const at::Tensor& bias) {
  if (weight.dim() != 4 || weight.size(2) != 3 || weight.size(3) != 3 || weight.size(1) != x.size(1))
    throw Error("resize then conv3x3: expected a (O, C, 3, 3) weight for a (N, C, h, w) map");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
  // Each tap's channel mixing on the small map: (N * h * w, C) x (C, 3 * 3 * O).
  const at::Tensor taps = at::linear(x.permute({0, 2, 3, 1}).reshape({n * h * w, c}),
                                     weight.permute({2, 3, 0, 1}).reshape({9 * o, c}));
  // Per output map, the taps as one (3h, 3w) matrix: rows (tap row, y), columns (tap column, x).
  const at::Tensor blocks = taps.view({n, h, w, 3, 3, o}).permute({0, 5, 3, 1, 4, 2}).reshape({n, o, 3 * h, 3 * w});
  const at::Tensor rows = shifted_resize_matrix(h, height, align_corners, x.options());
  const at::Tensor columns = shifted_resize_matrix(w, width, align_corners, x.options());
  at::Tensor out = at::matmul(rows, at::matmul(blocks, columns.t()));
  if (bias.defined()) out.add_(bias.view({1, o, 1, 1}));
  return out;
}

at::Tensor tf_crop_and_resize(const at::Tensor& features, const at::Tensor& boxes, const at::Tensor& box_indices,
                              int64_t crop_height, int64_t crop_width, double extrapolation) {
  if (boxes.dim() != 2 || boxes.size(1) != 4 || box_indices.size(0) != boxes.size(0))
    throw Error("crop_and_resize: boxes must be (N, 4) with one image index each");
  const at::Tensor b = boxes.to(features.scalar_type());
  const AxisSampling ys = sampling_at(crop_positions(b.select(1, 0), b.select(1, 2), features.size(2), crop_height),
                                      features.size(2));
  const AxisSampling xs = sampling_at(crop_positions(b.select(1, 1), b.select(1, 3), features.size(3), crop_width),
                                      features.size(3));
  return bilinear_sample(features, box_indices, ys, xs, extrapolation);
}

namespace {

// The positions [begin, end) whose samples lie inside (contiguous: positions are monotonic).
std::pair<int64_t, int64_t> inside_range(const at::Tensor& inside) {
  const at::Tensor index = at::nonzero(inside.to(at::kCPU)).view(-1);
  if (index.numel() == 0) return {0, 0};
  return {index[0].item<int64_t>(), index[-1].item<int64_t>() + 1};
}

AxisSampling columns(const AxisSampling& s, std::pair<int64_t, int64_t> range) {
  return {s.low.slice(1, range.first, range.second), s.high.slice(1, range.first, range.second),
          s.lerp.slice(1, range.first, range.second), s.inside.slice(1, range.first, range.second)};
}

}  // namespace

CropBlock tf_crop_and_resize_inside(const at::Tensor& image, const at::Tensor& box, int64_t crop_height,
                                    int64_t crop_width) {
  const at::Tensor b = box.to(image.scalar_type()).view({1, 4});
  const int64_t height = image.size(1), width = image.size(2);
  const AxisSampling ys = sampling_at(crop_positions(b.select(1, 0), b.select(1, 2), height, crop_height), height);
  const AxisSampling xs = sampling_at(crop_positions(b.select(1, 1), b.select(1, 3), width, crop_width), width);
  const auto rows = inside_range(ys.inside[0]), cols = inside_range(xs.inside[0]);
  if (rows.first == rows.second || cols.first == cols.second) return {0, 0, image.new_empty({image.size(0), 0, 0})};
  const at::Tensor index = at::zeros({1}, image.options().dtype(at::kLong));
  return {rows.first, cols.first,
          bilinear_sample(image.unsqueeze(0), index, columns(ys, rows), columns(xs, cols), 0.0)[0]};
}

at::Tensor tfod_maxpool(const at::Tensor& crops, int64_t kernel, int64_t stride) {
  if (kernel <= 0 || (kernel == 1 && stride == 1)) return crops;
  return at::max_pool2d(crops, {kernel, kernel}, {stride, stride});
}

at::Tensor tfod_grid_anchors(const TfodGridAnchors& spec, int64_t grid_height, int64_t grid_width) {
  std::vector<float> scales, ratios;  // ops.meshgrid(scales, aspect_ratios): ratio outer, scale inner
  for (float ratio : spec.aspect_ratios)
    for (float scale : spec.scales) {
      scales.push_back(scale);
      ratios.push_back(ratio);
    }
  const auto count = static_cast<int64_t>(scales.size());
  const at::Tensor scale = torch::from_blob(scales.data(), {count}, at::kFloat).clone();
  const at::Tensor ratio_sqrt = torch::from_blob(ratios.data(), {count}, at::kFloat).clone().sqrt();
  const at::Tensor heights = (scale / ratio_sqrt * static_cast<double>(spec.base_height)).view({1, 1, count});
  const at::Tensor widths = (scale * ratio_sqrt * static_cast<double>(spec.base_width)).view({1, 1, count});
  const at::Tensor y = (at::arange(grid_height, at::kFloat) * static_cast<double>(spec.stride_height) +
                        static_cast<double>(spec.offset_height)).view({grid_height, 1, 1});
  const at::Tensor x = (at::arange(grid_width, at::kFloat) * static_cast<double>(spec.stride_width) +
                        static_cast<double>(spec.offset_width)).view({1, grid_width, 1});
  const std::vector<int64_t> shape = {grid_height, grid_width, count};
  const at::Tensor half_h = (heights * 0.5).expand(shape), half_w = (widths * 0.5).expand(shape);
  const at::Tensor cy = y.expand(shape), cx = x.expand(shape);
  return at::stack({cy - half_h, cx - half_w, cy + half_h, cx + half_w}, 3).reshape({-1, 4});
}

at::Tensor tfod_decode_boxes(const at::Tensor& codes, const at::Tensor& anchors,
                             const std::array<float, 4>& scale_factors) {
  const auto a = anchors.unbind(1);
  const at::Tensor anchor_h = a[2] - a[0], anchor_w = a[3] - a[1];
  const at::Tensor anchor_cy = a[0] + anchor_h / 2.0, anchor_cx = a[1] + anchor_w / 2.0;
  const auto c = codes.unbind(1);
  const at::Tensor ty = c[0] / static_cast<double>(scale_factors[0]);
  const at::Tensor tx = c[1] / static_cast<double>(scale_factors[1]);
  const at::Tensor th = c[2] / static_cast<double>(scale_factors[2]);
  const at::Tensor tw = c[3] / static_cast<double>(scale_factors[3]);
  const at::Tensor w = at::exp(tw) * anchor_w, h = at::exp(th) * anchor_h;
  const at::Tensor cy = ty * anchor_h + anchor_cy, cx = tx * anchor_w + anchor_cx;
  return at::stack({cy - h / 2.0, cx - w / 2.0, cy + h / 2.0, cx + w / 2.0}, 1);
}

at::Tensor tfod_encode_boxes(const at::Tensor& boxes, const at::Tensor& anchors,
                             const std::array<float, 4>& scale_factors) {
  // BoxList.get_center_coordinates_and_sizes, in TF's float32 order.
  auto centers_and_sizes = [](const at::Tensor& b) {
    const auto c = b.unbind(1);
    const at::Tensor h = c[2] - c[0], w = c[3] - c[1];
    return std::array<at::Tensor, 4>{c[0] + h / 2.0, c[1] + w / 2.0, h + 1e-8, w + 1e-8};
  };
  const auto [anchor_cy, anchor_cx, anchor_h, anchor_w] = centers_and_sizes(anchors);
  const auto [cy, cx, h, w] = centers_and_sizes(boxes);
  const at::Tensor ty = (cy - anchor_cy) / anchor_h * static_cast<double>(scale_factors[0]);
  const at::Tensor tx = (cx - anchor_cx) / anchor_w * static_cast<double>(scale_factors[1]);
  const at::Tensor th = at::log(h / anchor_h) * static_cast<double>(scale_factors[2]);
  const at::Tensor tw = at::log(w / anchor_w) * static_cast<double>(scale_factors[3]);
  return at::stack({ty, tx, th, tw}, 1);
}

at::Tensor tfod_clip_to_window(const at::Tensor& boxes, const std::array<float, 4>& window) {
  const auto b = boxes.unbind(1);
  auto clip = [](const at::Tensor& v, float low, float high) {
    return at::clamp_min(at::clamp_max(v, static_cast<double>(high)), static_cast<double>(low));
  };
  return at::stack({clip(b[0], window[0], window[2]), clip(b[1], window[1], window[3]),
                    clip(b[2], window[0], window[2]), clip(b[3], window[1], window[3])},
                   1);
}

at::Tensor tfod_box_area(const at::Tensor& boxes) {
  const auto b = boxes.unbind(1);
  return (b[2] - b[0]) * (b[3] - b[1]);
}

at::Tensor tfod_scale_boxes(const at::Tensor& boxes, float y_scale, float x_scale) {
  const at::Tensor scale = torch::tensor({y_scale, x_scale, y_scale, x_scale}, boxes.options());
  return boxes * scale;
}

namespace {

// TF's IOU of non_max_suppression_op.cc: corners in either order, 0 when either box is empty.
float tf_iou(const float* a, const float* b) {
  const float a_ymin = std::min(a[0], a[2]), a_ymax = std::max(a[0], a[2]);
  const float a_xmin = std::min(a[1], a[3]), a_xmax = std::max(a[1], a[3]);
  const float b_ymin = std::min(b[0], b[2]), b_ymax = std::max(b[0], b[2]);
  const float b_xmin = std::min(b[1], b[3]), b_xmax = std::max(b[1], b[3]);
  const float area_a = (a_ymax - a_ymin) * (a_xmax - a_xmin);
  const float area_b = (b_ymax - b_ymin) * (b_xmax - b_xmin);
  if (area_a <= 0 || area_b <= 0) return 0.0f;
  const float inter_h = std::max(std::min(a_ymax, b_ymax) - std::max(a_ymin, b_ymin), 0.0f);
  const float inter_w = std::max(std::min(a_xmax, b_xmax) - std::max(a_xmin, b_xmin), 0.0f);
  const float inter = inter_h * inter_w;
  return inter / (area_a + area_b - inter);
}

}  // namespace

at::Tensor tf_non_max_suppression(const at::Tensor& boxes, const at::Tensor& scores, int64_t max_output,
                                  float iou_threshold, float score_threshold) {
  const at::Tensor b = boxes.to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor s = scores.to(at::kCPU, at::kFloat).contiguous();
  const float* box = b.data_ptr<float>();
  const float* score = s.data_ptr<float>();
  std::vector<int64_t> order;
  for (int64_t i = 0; i < s.numel(); ++i)
    if (score[i] > score_threshold) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return score[i] > score[j]; });
  std::vector<int64_t> kept;
  for (int64_t i : order) {
    if (static_cast<int64_t>(kept.size()) >= max_output) break;
    const bool suppressed = std::any_of(kept.begin(), kept.end(),
                                        [&](int64_t k) { return tf_iou(box + 4 * i, box + 4 * k) > iou_threshold; });
    if (!suppressed) kept.push_back(i);
  }
  return torch::tensor(kept, at::kLong);
}

}  // namespace mrcnn::model
