// The TF OD API's building blocks (lib/model/tfod_ops, tfod_postprocess, tfod_mask_rcnn) against
// slow, obvious references written from TensorFlow's kernels: crop_and_resize pixel by pixel, the
// legacy bilinear resize, the keep-aspect resizer's rounding, grid anchors, the box coder, greedy
// NMS, multiclass NMS with clipping and frames, mask reframing, the mask head's automatic depth,
// and the whole model's stages on random weights.
// The numbers against TensorFlow itself: tests/reference/test_tfod_mask_rcnn_parity.py.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "model/tfod_detect.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_ops.h"
#include "model/tfod_postprocess.h"
#include "ops/winograd_conv.h"

using namespace mrcnn::model;

namespace {

// tf.image.crop_and_resize's kernel, one output value at a time (crop_and_resize_op.cc).
float crop_pixel(const at::Tensor& image, const float* box, int64_t crop_h, int64_t crop_w, int64_t y, int64_t x,
                 int64_t c) {
  const int64_t height = image.size(1), width = image.size(2);
  auto position = [](float start, float end, int64_t size, int64_t crop, int64_t i) {
    if (crop == 1) return 0.5f * (start + end) * static_cast<float>(size - 1);
    const float scale = (end - start) * static_cast<float>(size - 1) / static_cast<float>(crop - 1);
    return start * static_cast<float>(size - 1) + static_cast<float>(i) * scale;
  };
  const float in_y = position(box[0], box[2], height, crop_h, y), in_x = position(box[1], box[3], width, crop_w, x);
  if (in_y < 0 || in_y > height - 1 || in_x < 0 || in_x > width - 1) return -7.0f;  // the extrapolation value
  const auto top = static_cast<int64_t>(std::floor(in_y)), bottom = static_cast<int64_t>(std::ceil(in_y));
  const auto left = static_cast<int64_t>(std::floor(in_x)), right = static_cast<int64_t>(std::ceil(in_x));
  const float y_lerp = in_y - static_cast<float>(top), x_lerp = in_x - static_cast<float>(left);
  auto value = [&](int64_t yy, int64_t xx) { return image[c][yy][xx].item<float>(); };
  const float upper = value(top, left) + (value(top, right) - value(top, left)) * x_lerp;
  const float lower = value(bottom, left) + (value(bottom, right) - value(bottom, left)) * x_lerp;
  return upper + (lower - upper) * y_lerp;
}

}  // namespace

TEST_CASE("crop_and_resize samples as TF's kernel: (size - 1) spacing, extrapolation outside", "[model][tfod]") {
  const at::Tensor features = torch::rand({2, 3, 5, 7}, torch::TensorOptions().dtype(torch::kFloat));
  // Inside, partly outside, flipped, a single-row crop's centre line, a point.
  const at::Tensor boxes = torch::tensor({0.1f, 0.2f, 0.8f, 0.9f, -0.3f, 0.5f, 0.6f, 1.4f, 0.9f, 0.7f, 0.2f, 0.1f,
                                          0.25f, 0.0f, 0.75f, 1.0f, 0.5f, 0.5f, 0.5f, 0.5f})
                              .view({5, 4});
  const at::Tensor index = torch::tensor({0, 1, 0, 1, 1}, torch::kLong);
  for (const auto& [crop_h, crop_w] : {std::pair<int64_t, int64_t>{4, 3}, {1, 6}}) {
    const at::Tensor got = tf_crop_and_resize(features, boxes, index, crop_h, crop_w, -7.0);
    REQUIRE(got.sizes() == at::IntArrayRef({5, 3, crop_h, crop_w}));
    for (int64_t n = 0; n < 5; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < crop_h; ++y)
          for (int64_t x = 0; x < crop_w; ++x)
            REQUIRE(got[n][c][y][x].item<float>() ==
                    Approx(crop_pixel(features[index[n].item<int64_t>()], boxes[n].contiguous().data_ptr<float>(),
                                      crop_h, crop_w, y, x, c))
                        .margin(1e-6));
  }
}

TEST_CASE("crop_and_resize over the inside block only gives the same values there", "[model][tfod]") {
  const at::Tensor image = torch::rand({2, 5, 7});
  // Inside, partly outside on every side, flipped, wholly outside.
  const at::Tensor boxes = torch::tensor({0.1f, 0.2f, 0.8f, 0.9f, -0.3f, -0.5f, 1.6f, 1.4f, 0.9f, 1.2f, 0.2f, 0.1f,
                                          1.5f, 0.0f, 2.0f, 1.0f})
                              .view({4, 4});
  for (int64_t n = 0; n < 4; ++n) {
    const at::Tensor full =
        tf_crop_and_resize(image.unsqueeze(0), boxes.slice(0, n, n + 1), torch::zeros({1}, torch::kLong), 9, 11, -7.0)[0];
    const CropBlock block = tf_crop_and_resize_inside(image, boxes[n], 9, 11);
    const int64_t rows = block.values.size(1), cols = block.values.size(2);
    CHECK(torch::equal(full.slice(1, block.y0, block.y0 + rows).slice(2, block.x0, block.x0 + cols), block.values));
    CHECK(full.eq(-7.0).sum().item<int64_t>() == 2 * (9 * 11 - rows * cols));
  }
}

TEST_CASE("crop_and_resize and the resize give the same bits in one pass as the differentiable path",
          "[model][tfod]") {
  torch::manual_seed(5);
  const at::Tensor features = torch::randn({2, 19, 9, 11}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor boxes = torch::rand({40, 4}) * 1.6 - 0.3;  // some inside, some partly or wholly outside, flipped
  const at::Tensor index = torch::randint(0, 2, {40}, torch::kLong);
  const at::Tensor tracked = features.clone().requires_grad_(true);  // takes the ATen ops
  const at::Tensor one_pass = tf_crop_and_resize(features, boxes, index, 7, 5, -7.0);
  const at::Tensor aten = tf_crop_and_resize(tracked, boxes, index, 7, 5, -7.0).detach();
  CHECK(torch::equal(one_pass, aten));
  CHECK(one_pass.eq(-7.0).any().item<bool>());  // the extrapolation was exercised
  for (const bool align_corners : {false, true})
    CHECK(torch::equal(tf_resize_bilinear(features, 23, 17, align_corners),
                       tf_resize_bilinear(tracked, 23, 17, align_corners).detach()));
}

TEST_CASE("the legacy bilinear resize takes source = destination * in / out", "[model][tfod]") {
  const at::Tensor image = torch::arange(12, torch::kFloat).view({1, 1, 3, 4});
  // 3x4 -> 2x8: rows 0 and 1.5 (between 1 and 2), columns x / 2.
  const at::Tensor got = tf_resize_bilinear(image, 2, 8, false);
  const at::Tensor expected = torch::tensor({0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.0f, 6.0f, 6.5f, 7.0f, 7.5f,
                                             8.0f, 8.5f, 9.0f, 9.0f})
                                  .view({1, 1, 2, 8});
  CHECK(torch::equal(got, expected));
  // align_corners: the corners map onto each other, (in - 1) / (out - 1) between.
  const at::Tensor corners = tf_resize_bilinear(image, 5, 7, true);
  CHECK(corners[0][0][4][6].item<float>() == 11.0f);
  CHECK(corners[0][0][2][3].item<float>() == Approx(5.5f));
}

TEST_CASE("a 3x3 convolution of a resize, computed at the small size, is the convolution of the resize",
          "[model][tfod]") {
  torch::manual_seed(7);
  const at::Tensor x = torch::randn({2, 16, 5, 7});
  const at::Tensor weight = torch::randn({6, 16, 3, 3}), bias = torch::randn({6});
  for (const bool align_corners : {true, false}) {
    const at::Tensor resized = tf_resize_bilinear(x, 11, 13, align_corners).to(torch::kDouble);
    const at::Tensor expected = torch::conv2d(resized, weight.to(torch::kDouble), bias.to(torch::kDouble), 1, 1);
    const at::Tensor got = tf_resize_then_conv3x3(x, 11, 13, align_corners, weight, bias).to(torch::kDouble);
    REQUIRE(got.sizes() == expected.sizes());
    // float32 rounding bound of a sum of 9 * 16 products plus the resize's few operations, each
    // term's magnitude from the float64 sums of absolute values: a wrong tap, shift or edge is O(1).
    const at::Tensor magnitude =
        torch::conv2d(resized.abs(), weight.abs().to(torch::kDouble), bias.abs().to(torch::kDouble), 1, 1);
    const double epsilon = std::ldexp(1.0, -24);
    CHECK(((got - expected).abs() <= (9 * 16 + 16) * epsilon * magnitude).all().item<bool>());
    CHECK((got - expected).abs().max().item<double>() < 1e-3);
  }
  // Without a bias, and a 1x1 map (its resize is constant): the same.
  const at::Tensor dot = torch::randn({1, 16, 1, 1});
  const at::Tensor flat = torch::conv2d(tf_resize_bilinear(dot, 4, 4, true), weight, {}, 1, 1);
  CHECK(torch::allclose(tf_resize_then_conv3x3(dot, 4, 4, true, weight, {}), flat, 1e-4, 1e-4));
}

TEST_CASE("the keep-aspect resizer rounds a float32 scale half to even", "[model][tfod]") {
  TfodResizer keep;
  keep.keep_aspect = true;
  keep.min_dimension = 256;
  keep.max_dimension = 384;
  // Landscape 536x559: min(256 / 536, 384 / 559) = 0.4776, 536 -> 256, 559 -> 267.
  const ResizedShape landscape = tfod_resized_shape(keep, 536, 559);
  CHECK(landscape.height == 256);
  CHECK(landscape.width == 267);
  // Portrait or square targets (max, min): 100x100 -> 256x256; 1000x500 -> 384x192.
  CHECK(tfod_resized_shape(keep, 100, 100).height == 256);
  CHECK(tfod_resized_shape(keep, 1000, 500).width == 192);
  // Halves round to even: 10x13 at scale min(5 / 10, 12 / 13) = 0.5 gives 6.5 -> 6; 2x3 at 2.5 gives 7.5 -> 8.
  keep.min_dimension = 5;
  keep.max_dimension = 12;
  CHECK(tfod_resized_shape(keep, 10, 13).width == 6);
  CHECK(tfod_resized_shape(keep, 2, 3).width == 8);
  keep.pad_to_max_dimension = true;
  CHECK(tfod_padded_shape(keep, {5, 6}).height == 12);
  CHECK(tfod_resized_shape(TfodResizer{}, 10, 20).height == 300);
}

TEST_CASE("an image the keep-aspect resizer leaves a side of 0 pixels is refused by name", "[model][tfod]") {
  TfodResizer keep;
  keep.keep_aspect = true;
  keep.min_dimension = 64;
  keep.max_dimension = 96;
  // 3x400: scale min(64 / 3, 96 / 400) = 0.24, 3 -> 0.72 -> 1 row; 2x400: 0.48 -> 0 rows.
  CHECK_NOTHROW(tfod_check_image_size(keep, 3, 400));
  CHECK_THROWS_WITH(tfod_check_image_size(keep, 2, 400),
                    Catch::Contains("image of 400x2 pixels is too elongated") && Catch::Contains("to 96x0 pixels"));
  CHECK_THROWS_WITH(tfod_check_image_size(keep, 400, 2), Catch::Contains("2x400 pixels is too elongated"));
  TfodResizer fixed;  // fixed_shape stretches any image
  CHECK_NOTHROW(tfod_check_image_size(fixed, 1, 100000));
}

TEST_CASE("grid anchors: ratio outer, scale inner, (y, x) centres at stride * i + offset", "[model][tfod]") {
  TfodGridAnchors spec;
  spec.scales = {0.5f, 1.0f};
  spec.aspect_ratios = {1.0f, 4.0f};
  spec.offset_height = 8;
  const at::Tensor anchors = tfod_grid_anchors(spec, 2, 3);
  REQUIRE(anchors.sizes() == at::IntArrayRef({2 * 3 * 4, 4}));
  // Location (0, 0): ratio 1 scale 0.5 -> 128 x 128 around (8, 0); ratio 4 scale 1 -> 128 high, 512 wide.
  CHECK(torch::equal(anchors[0], torch::tensor({8.0f - 64, -64.0f, 8.0f + 64, 64.0f})));
  CHECK(torch::equal(anchors[3], torch::tensor({8.0f - 64, -256.0f, 8.0f + 64, 256.0f})));
  // Location (1, 2) is the last: centre (24, 32).
  CHECK(torch::equal(anchors[20], torch::tensor({24.0f - 64, 32.0f - 64, 24.0f + 64, 32.0f + 64})));
}

TEST_CASE("the Faster R-CNN box coder decodes (ty, tx, th, tw) over scale factors 10, 10, 5, 5", "[model][tfod]") {
  const at::Tensor anchors = torch::tensor({10.0f, 20.0f, 30.0f, 60.0f, 0.0f, 0.0f, 4.0f, 4.0f}).view({2, 4});
  const at::Tensor codes = torch::tensor({0.0f, 0.0f, 0.0f, 0.0f, 5.0f, -10.0f, 5.0f * std::log(2.0f), 0.0f}).view({2, 4});
  const at::Tensor boxes = tfod_decode_boxes(codes, anchors);
  CHECK(torch::equal(boxes[0], anchors[0]));
  // Second: centre (2, 2) moved by (0.5 * 4, -1 * 4) = (4, -2), height doubled.
  CHECK(torch::allclose(boxes[1], torch::tensor({0.0f, -4.0f, 8.0f, 0.0f})));
}

TEST_CASE("TF's NMS: strictly above the score threshold, IoU above the threshold suppresses, ties by index",
          "[model][tfod]") {
  const at::Tensor boxes = torch::tensor({0.0f, 0.0f, 10.0f, 10.0f,   // 0
                                          0.0f, 0.0f, 10.0f, 10.0f,   // 1: same as 0, same score
                                          0.0f, 5.0f, 10.0f, 15.0f,   // 2: IoU 1/3 with 0
                                          20.0f, 20.0f, 10.0f, 10.0f,  // 3: flipped corners, kept
                                          0.0f, 0.0f, 1.0f, 1.0f})    // 4: score at the threshold
                              .view({5, 4});
  const at::Tensor scores = torch::tensor({0.9f, 0.9f, 0.8f, 0.95f, 0.1f});
  CHECK(torch::equal(tf_non_max_suppression(boxes, scores, 10, 0.5f, 0.1f), torch::tensor({3, 0, 2}, torch::kLong)));
  // IoU exactly 1/3 is not above a threshold of 1/3.
  CHECK(tf_non_max_suppression(boxes, scores, 10, 1.0f / 3.0f, 0.1f).size(0) == 3);
  CHECK(tf_non_max_suppression(boxes, scores, 2, 0.5f, 0.1f).size(0) == 2);
}

TEST_CASE("multiclass NMS sorts all classes, clips, drops empty boxes, changes frame, keeps max_total",
          "[model][tfod]") {
  // Two proposals, two classes, per-class boxes.
  const at::Tensor boxes = torch::tensor({0.0f, 0.0f, 10.0f, 10.0f, 0.0f, 0.0f, 4.0f, 8.0f,  // proposal 0
                                          30.0f, 30.0f, 40.0f, 40.0f, 2.0f, -2.0f, 6.0f, 4.0f})  // proposal 1
                              .view({2, 2, 4});
  const at::Tensor scores = torch::tensor({0.5f, 0.7f, 0.9f, 0.6f}).view({2, 2});
  TfodNms nms;
  nms.max_total = 2;
  // Window 20 x 8: proposal 1 class 0 lies outside (zero area once clipped) and goes.
  const TfodSelection s = tfod_multiclass_nms(boxes, scores, nms, {0.0f, 0.0f, 20.0f, 8.0f}, true);
  REQUIRE(s.scores.size(0) == 2);
  CHECK(torch::equal(s.classes, torch::tensor({1, 1}, torch::kLong)));
  CHECK(torch::equal(s.rows, torch::tensor({0, 1}, torch::kLong)));
  CHECK(torch::allclose(s.boxes[0], torch::tensor({0.0f, 0.0f, 0.2f, 1.0f})));
  CHECK(torch::allclose(s.boxes[1], torch::tensor({0.1f, 0.0f, 0.3f, 0.5f})));  // clipped at x = 0
}

TEST_CASE("masks reframed into the image: a box's mask stretched over it, zero outside", "[model][tfod]") {
  const at::Tensor mask = torch::ones({1, 3, 3});
  const at::Tensor box = torch::tensor({0.25f, 0.5f, 0.75f, 1.0f}).view({1, 4});
  const at::Tensor image = tfod_reframe_masks(mask, box, 9, 5);
  REQUIRE(image.sizes() == at::IntArrayRef({1, 9, 5}));
  // Rows 2..6 (y = 0.25 .. 0.75 of 8) and columns 2..4 (x = 0.5 .. 1 of 4).
  CHECK(image.sum().item<float>() == 15.0f);
  CHECK(image[0][2][2].item<float>() == 1.0f);
  CHECK(image[0][1][2].item<float>() == 0.0f);
}

TEST_CASE("the mask head's automatic depth is the OD API's log-space weighted mean", "[model][tfod]") {
  TfodSettings settings;
  settings.mask_conv_depth = 0;
  settings.num_classes = 3;  // (2 * log2 1536 + 3 * log2 3) / 5 = 5.19 -> 32
  CHECK(tfod_mask_conv_depth(settings, 1536) == 32);
  settings.num_classes = 90;  // 8.13 -> 256
  CHECK(tfod_mask_conv_depth(settings, 1536) == 256);
  settings.mask_conv_depth = 64;
  CHECK(tfod_mask_conv_depth(settings, 1536) == 64);
}

TEST_CASE("the published model's mask head (90 classes, 256 deep) in inference is its float64 self",
          "[model][tfod]") {
  torch::manual_seed(11);
  TfodSettings settings;  // the defaults: 90 classes, 33x33 masks, 4 layers, automatic depth (256)
  TfodMaskRcnn net(settings);
  const at::Tensor features = torch::randn({2, 1536, 9, 9});  // two detections' box features
  std::map<std::string, at::Tensor> params;
  for (const auto& item : net->named_parameters()) params[item.key()] = item.value();
  std::vector<at::Tensor> weights, biases;
  for (int i = 0; i < 3; ++i) {
    weights.push_back(params.at("mask_conv_" + std::to_string(i) + "_weight"));
    biases.push_back(params.at("mask_conv_" + std::to_string(i) + "_bias"));
  }
  weights.push_back(params.at("mask_last_weight"));
  biases.push_back(params.at("mask_last_bias"));
  // The resize, then every convolution in float64 (SAME: padding 1), as the OD API computes it.
  at::Tensor expected = tf_resize_bilinear(features, 33, 33, true).to(torch::kDouble);
  for (size_t i = 0; i < weights.size(); ++i) {
    expected = torch::conv2d(expected, weights[i].to(torch::kDouble), biases[i].to(torch::kDouble), 1, 1);
    if (i + 1 < weights.size()) expected = expected.relu();
  }
  torch::NoGradGuard no_grad;
  // The 256-deep layers take our Winograd here (what mrcnn-infer runs at this scale), and the first
  // one runs at the features' 9x9 size: both within float32 rounding of the float64 head, far from
  // any wrong tap, shift or edge (those move logits by their own size).
  REQUIRE(mrcnn::ops::winograd_applies(torch::zeros({2, 256, 33, 33}), weights[1]));
  const at::Tensor got = net->mask_head(features).to(torch::kDouble);
  REQUIRE(got.sizes() == torch::IntArrayRef({2, 90, 33, 33}));
  const double scale = expected.abs().max().item<double>();
  REQUIRE(scale > 0);
  const double error = (got - expected).abs().max().item<double>();
  INFO("max |error| " << error << " of max |logit| " << scale);
  CHECK(error <= 1e-4 * scale);  // measured 4.3e-6 of the scale (AVX-512 and AVX2 alike)
}

TEST_CASE("the whole model on random weights: stage shapes, proposals and detections inside the image",
          "[model][tfod]") {
  TfodSettings settings;
  settings.num_classes = 2;
  settings.resizer.keep_aspect = true;
  settings.resizer.min_dimension = 48;
  settings.resizer.max_dimension = 64;
  settings.resizer.pad_to_max_dimension = true;
  settings.first_stage_max_proposals = 8;
  settings.initial_crop_size = 9;  // small crops keep the second stage cheap (5x5 features)
  settings.mask_height = settings.mask_width = 8;
  settings.mask_conv_layers = 2;
  settings.second_stage_nms.max_total = 5;
  torch::manual_seed(0);
  TfodMaskRcnn net(settings);
  for (auto& p : net->parameters()) p.data().normal_(0.0, 0.02);
  net->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor image = torch::rand({1, 3, 30, 50}) * 255;
  const TfodOutputs out = net->forward(image);
  // 30x50 -> 38x64 (48 / 30 > 64 / 50), padded to 64x64: a 4x4 grid of 12 anchors.
  CHECK(out.input.true_shape == std::array<float, 2>{38.0f, 64.0f});
  CHECK(out.input.pixels.sizes() == at::IntArrayRef({1, 3, 64, 64}));
  CHECK(out.rpn.box_encodings.sizes() == at::IntArrayRef({4 * 4 * 12, 4}));
  const int64_t proposals = out.proposals.boxes.size(0);
  REQUIRE(proposals > 0);
  CHECK(proposals <= 8);
  // Clipped to the true image: y within 38 / 64 of the padded input.
  CHECK(out.proposals.boxes.select(1, 2).max().item<float>() <= 38.0f / 64.0f);
  CHECK(out.box_classifier.class_logits.sizes() == at::IntArrayRef({proposals, 3}));
  const int64_t detections = out.detections.boxes.size(0);
  CHECK(detections <= 5);
  CHECK(out.detections.boxes.min().item<float>() >= 0.0f);
  CHECK(out.detections.boxes.max().item<float>() <= 1.0f);
  CHECK(out.masks.sizes() == at::IntArrayRef({detections, 8, 8}));
  const mrcnn::eval::ImageDetections found = tfod_detect_instances(*net, image, 0.0f);
  REQUIRE(static_cast<int64_t>(found.instances.size()) == detections);
  for (const auto& instance : found.instances) {
    CHECK(instance.box[2] <= 50.0f);
    CHECK(instance.box[3] <= 30.0f);
    CHECK((instance.label == 1 || instance.label == 2));
    CHECK(instance.mask.height == 30);
  }
}

TEST_CASE("a model without masks (predict_instance_masks false, or 2 stages) reports boxes without masks",
          "[model][tfod]") {
  TfodSettings settings;
  settings.num_classes = 2;
  settings.resizer.height = settings.resizer.width = 48;
  settings.first_stage_max_proposals = 8;
  settings.initial_crop_size = 9;
  settings.second_stage_nms.max_total = 5;
  const bool two_stages = GENERATE(false, true);
  if (two_stages) settings.number_of_stages = 2;
  else settings.predict_instance_masks = false;
  CHECK_FALSE(settings.predicts_masks());
  torch::manual_seed(0);
  TfodMaskRcnn net(settings);
  for (auto& p : net->parameters()) p.data().normal_(0.0, 0.02);
  net->eval();
  torch::NoGradGuard no_grad;
  const mrcnn::eval::ImageDetections found = tfod_detect_instances(*net, torch::rand({1, 3, 30, 50}) * 255, 0.0f);
  CHECK_FALSE(found.has_masks);
  REQUIRE_FALSE(found.instances.empty());
  for (const auto& record : mrcnn::eval::to_coco_results(found, 1)) {
    CHECK(record.contains("bbox"));
    CHECK_FALSE(record.contains("segmentation"));
  }
}
