// The TF OD API's numeric building blocks with TensorFlow's arithmetic: image resizers, TF's
// bilinear sampling (crop_and_resize, legacy resize_bilinear), grid anchors, the Faster R-CNN box
// coder in (y, x) order, box clipping and frames, and TF's greedy non-max suppression. Boxes are
// [ymin, xmin, ymax, xmax]; feature maps NCHW.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

#include "model/tfod_settings.h"

namespace mrcnn::model {

// Height and width of an image after the resizer, before padding (the "true image shape").
struct ResizedShape {
  int64_t height = 0, width = 0;
};

// What the resizer makes of an image of `height` x `width`: keep_aspect_ratio_resizer takes the
// float32 scale min(target_h / h, target_w / w) (target (min, max) for landscape, (max, min)
// otherwise) and rounds half to even, as tf.image.resize_images(preserve_aspect_ratio=True).
ResizedShape tfod_resized_shape(const TfodResizer& resizer, int64_t height, int64_t width);

// Throws Error when the resizer leaves a side of a height x width image 0 pixels (keep_aspect_ratio
// of an image so elongated that its short side rounds to 0): the image the model cannot take.
void tfod_check_image_size(const TfodResizer& resizer, int64_t height, int64_t width);

// The padded input size: max_dimension square with pad_to_max_dimension, else the resized shape.
ResizedShape tfod_padded_shape(const TfodResizer& resizer, const ResizedShape& resized);

// TF's legacy bilinear resize (resize_bilinear, half_pixel_centers false) of NCHW float images:
// source = destination * scale, scale in/out (align_corners: (in-1)/(out-1)), corners clamped.
at::Tensor tf_resize_bilinear(const at::Tensor& images, int64_t height, int64_t width, bool align_corners);

// A 3x3 SAME convolution (weight (O, C, 3, 3), bias (O) or undefined) of
// tf_resize_bilinear(x, height, width, align_corners), computed at x's size: resize and convolution
// are both linear and the resize acts on each channel alone, so each of the 9 taps mixes the
// channels on the small map, and the output is the sum over taps of the taps' maps resized and
// shifted by the tap's offset (two small matrix products per map). The same values up to float32
// rounding, at (h * w) / (height * width) of the channel mixing's multiplications (the mask head's
// 9x9 -> 33x33: a thirteenth).
at::Tensor tf_resize_then_conv3x3(const at::Tensor& x, int64_t height, int64_t width, bool align_corners,
                                  const at::Tensor& weight, const at::Tensor& bias);

// tf.image.crop_and_resize (bilinear) of NCHW `features`: boxes (N, 4) normalised [y1, x1, y2, x2],
// where y maps to y * (H - 1) and crop rows are spaced (y2 - y1) * (H - 1) / (crop_h - 1);
// samples outside the map take `extrapolation`. box_indices (N) pick the image. Returns
// (N, C, crop_h, crop_w).
at::Tensor tf_crop_and_resize(const at::Tensor& features, const at::Tensor& boxes, const at::Tensor& box_indices,
                              int64_t crop_height, int64_t crop_width, double extrapolation = 0.0);

// What crop_and_resize of one box gives inside the source image, the rest being the extrapolation
// value: the block's top-left (y0, x0) in the crop and its values (C, rows, columns); empty when no
// sample falls inside.
struct CropBlock {
  int64_t y0 = 0, x0 = 0;
  at::Tensor values;
};

// tf_crop_and_resize of `image` (C, H, W) at one normalised box (4) to crop_height x crop_width,
// computed only where samples fall inside the image (the same values there, bit for bit).
CropBlock tf_crop_and_resize_inside(const at::Tensor& image, const at::Tensor& box, int64_t crop_height,
                                    int64_t crop_width);

// The meta-architecture's max pool after cropping (Keras MaxPooling2D, VALID); kernel 0 = none.
at::Tensor tfod_maxpool(const at::Tensor& crops, int64_t kernel, int64_t stride);

// GridAnchorGenerator's anchors for a grid_h x grid_w feature map, (grid_h * grid_w * A, 4) in
// input pixels, row-major over the grid, then aspect ratio, then scale.
at::Tensor tfod_grid_anchors(const TfodGridAnchors& spec, int64_t grid_height, int64_t grid_width);

// FasterRcnnBoxCoder.decode: codes (N, 4) [ty, tx, th, tw] divided by the scale factors, against
// anchors (N, 4). No clamp of th / tw (TF has none).
at::Tensor tfod_decode_boxes(const at::Tensor& codes, const at::Tensor& anchors,
                             const std::array<float, 4>& scale_factors = {10.0f, 10.0f, 5.0f, 5.0f});

// FasterRcnnBoxCoder.encode: boxes (N, 4) as [ty, tx, th, tw] against anchors (N, 4), each size
// plus 1e-8 (TF's EPSILON, so that empty boxes give finite codes), times the scale factors.
at::Tensor tfod_encode_boxes(const at::Tensor& boxes, const at::Tensor& anchors,
                             const std::array<float, 4>& scale_factors = {10.0f, 10.0f, 5.0f, 5.0f});

// box_list_ops.clip_to_window: each coordinate into window [ymin, xmin, ymax, xmax].
at::Tensor tfod_clip_to_window(const at::Tensor& boxes, const std::array<float, 4>& window);

// box_list_ops.area.
at::Tensor tfod_box_area(const at::Tensor& boxes);

// Boxes scaled by (y_scale, x_scale), as box_list_ops.scale (to_normalized_coordinates passes
// 1 / height, 1 / width).
at::Tensor tfod_scale_boxes(const at::Tensor& boxes, float y_scale, float x_scale);

// TF's non_max_suppression (V5, hard): candidates with score > score_threshold, highest score first
// (ties: lower index), each kept unless its IoU with a kept box exceeds iou_threshold, at most
// max_output. Returns the kept indices (int64, CPU) in order.
at::Tensor tf_non_max_suppression(const at::Tensor& boxes, const at::Tensor& scores, int64_t max_output,
                                  float iou_threshold, float score_threshold);

}  // namespace mrcnn::model
