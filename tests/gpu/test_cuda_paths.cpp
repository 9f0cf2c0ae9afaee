// On a GPU: every op and the whole model on CUDA against the CPU path, and mixed-precision training
// (bf16/fp16 autocast, fp16 loss scaling) against float32.
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>

#include "model/backbone.h"
#include "model/mask_rcnn.h"
#include "ops/boxes.h"
#include "ops/aten/nms_aten.h"
#include "ops/aten/roi_align_aten.h"
#include "ops/nms.h"
#include "ops/paste_masks.h"
#if MRCNN_WITH_CUDA_KERNELS
#include "ops/cuda/nms_kernel.h"
#endif
#include "ops/roi_align.h"
#include "train/mixed_precision.h"

TEST_CASE("ROIAlign on CUDA matches the CPU kernel", "[gpu]") {
  torch::manual_seed(1);
  const torch::Tensor input = torch::randn({2, 32, 50, 60});
  torch::Tensor rois = torch::rand({200, 5}) * 100;
  rois.select(1, 0) = torch::randint(0, 2, {200}).to(torch::kFloat);
  rois.select(1, 3) = rois.select(1, 1) + torch::rand({200}) * 50;
  rois.select(1, 4) = rois.select(1, 2) + torch::rand({200}) * 50;
  for (const int64_t ratio : {0, 2}) {
    const torch::Tensor cpu = mrcnn::ops::roi_align(input, rois, 0.5, 7, 7, ratio, false);
    const torch::Tensor gpu = mrcnn::ops::roi_align(input.cuda(), rois.cuda(), 0.5, 7, 7, ratio, false).cpu();
    // nvcc fuses multiply-adds, the CPU build does not: float rounding, seen up to 1.3e-5 where
    // the bilinear terms cancel (reproduced on the CPU with -ffp-contract=fast).
    INFO("ratio " << ratio << " max difference " << (gpu - cpu).abs().max().item<float>());
    CHECK(torch::allclose(gpu, cpu, 1e-4, 1e-4));
    // NHWC features (channels-last convolutions) are read in place, with the same arithmetic.
    const torch::Tensor nhwc = input.cuda().contiguous(at::MemoryFormat::ChannelsLast);
    CHECK(torch::equal(mrcnn::ops::roi_align(nhwc, rois.cuda(), 0.5, 7, 7, ratio, false).cpu(), gpu));
    // bf16 features (autocast) run on the float32 kernel, as torchvision's autocast rule does.
    const torch::Tensor bf16 = input.cuda().to(torch::kBFloat16);
    const torch::Tensor pooled = mrcnn::ops::roi_align(bf16, rois.cuda(), 0.5, 7, 7, ratio, false);
    CHECK(pooled.scalar_type() == torch::kBFloat16);
    CHECK(torch::equal(pooled,
                       mrcnn::ops::roi_align(bf16.to(torch::kFloat), rois.cuda(), 0.5, 7, 7, ratio, false)
                           .to(torch::kBFloat16)));
  }
}

#if MRCNN_WITH_CUDA_KERNELS
TEST_CASE("the CUDA ROIAlign kernels match the CPU kernels and the ATen path, forward and backward", "[gpu]") {
  torch::manual_seed(11);
  for (const auto type : {torch::kFloat, torch::kDouble}) {
    const torch::Tensor input = torch::randn({2, 16, 40, 52}, type);
    torch::Tensor rois = torch::rand({150, 5}, type) * 90 - 10;  // some past the edges
    rois.select(1, 0) = torch::randint(0, 2, {150}).to(type);
    rois.select(1, 3) = rois.select(1, 1) + torch::rand({150}, type) * 60;
    rois.select(1, 4) = rois.select(1, 2) + torch::rand({150}, type) * 60;
    const torch::Tensor upstream = torch::randn({150, 16, 7, 7}, type);
    for (const bool aligned : {false, true})
      for (const int64_t ratio : {0, 2}) {
        INFO("dtype " << type << " aligned " << aligned << " ratio " << ratio);
        const auto run = [&](const torch::Device& device, bool aten) {
          const torch::Tensor x = input.to(device).detach().clone().requires_grad_(true);
          const torch::Tensor out =
              aten ? mrcnn::ops::aten::roi_align(x, rois.to(device), 0.5, 7, 7, ratio, aligned)
                   : mrcnn::ops::roi_align(x, rois.to(device), 0.5, 7, 7, ratio, aligned);
          (out * upstream.to(device)).sum().backward();
          return std::make_pair(out.detach().cpu(), x.grad().cpu());
        };
        const auto [cpu_out, cpu_grad] = run(torch::kCPU, false);
        const auto [gpu_out, gpu_grad] = run(torch::kCUDA, false);
        const auto [aten_out, aten_grad] = run(torch::kCUDA, true);
        const double tolerance = type == torch::kDouble ? 1e-10 : 1e-4;  // fused multiply-adds (above)
        INFO("max difference to the CPU: forward " << (gpu_out - cpu_out).abs().max().item<double>() << ", backward "
                                                    << (gpu_grad - cpu_grad).abs().max().item<double>());
        CHECK(torch::allclose(gpu_out, cpu_out, tolerance, tolerance));
        CHECK(torch::allclose(gpu_grad, cpu_grad, tolerance, 10 * tolerance));  // atomic sums in any order
        CHECK(torch::allclose(gpu_out, aten_out, tolerance, tolerance));
        CHECK(torch::allclose(gpu_grad, aten_grad, tolerance, 10 * tolerance));
      }
  }
}

TEST_CASE("the CUDA NMS kernel keeps what the ATen path keeps", "[gpu]") {
  torch::manual_seed(7);
  // Sizes around the 64-box words, tied scores, float and double, heavy and light overlap.
  for (const int64_t n : {0, 1, 63, 64, 65, 1000, 4100}) {
    for (const auto type : {torch::kFloat, torch::kDouble}) {
      const torch::Tensor xy = torch::rand({n, 2}, type) * 300;
      const torch::Tensor boxes = torch::cat({xy, xy + torch::rand({n, 2}, type) * 60 + 1}, 1).cuda();
      const torch::Tensor scores = (torch::rand({n}, type) * 20).round().cuda();  // many ties
      for (const double threshold : {0.3, 0.7}) {
        const torch::Tensor kernel = mrcnn::ops::cuda::nms_kernel(boxes, scores, threshold).cpu();
        const torch::Tensor reference = mrcnn::ops::aten::nms(boxes, scores, threshold).cpu();
        INFO("n " << n << " threshold " << threshold);
        CHECK(torch::equal(kernel, reference));
      }
    }
  }
}

TEST_CASE("the CUDA NMS greedy pass keeps what the CPU kernel keeps at a training RPN's size and past 1024 words",
          "[gpu]") {
  torch::manual_seed(8);
  // 10000: a training image's proposals (5 levels x 2000, one NMS with coordinate offsets), 157
  // words; 70000: 1094 words, more than the block's 1024 threads, so threads take several words.
  for (const int64_t n : {10000, 70000}) {
    const torch::Tensor xy = torch::rand({n, 2}) * 1300;
    const torch::Tensor boxes = torch::cat({xy, xy + torch::rand({n, 2}) * 120 + 1}, 1);
    const torch::Tensor scores = torch::rand({n});
    const torch::Tensor kept = mrcnn::ops::cuda::nms_kernel(boxes.cuda(), scores.cuda(), 0.7).cpu();
    const torch::Tensor expected = mrcnn::ops::nms(boxes, scores, 0.7);
    INFO("n " << n << ": kept " << kept.numel() << ", CPU kernel " << expected.numel());
    REQUIRE(expected.numel() < n);
    CHECK(torch::equal(kept, expected));
  }
}
#endif

TEST_CASE("a frozen norm runs folded into its convolution on CUDA: the unfolded values, bf16 kept bf16", "[gpu]") {
  torch::manual_seed(12);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(16, 32, 3).padding(1).bias(false));
  mrcnn::model::BatchNorm2d norm(32, mrcnn::model::NormSpec{0.0, false});
  {
    torch::NoGradGuard no_grad;
    for (auto& item : norm->named_buffers()) item.value().copy_(torch::rand_like(item.value()) + 0.5);
  }
  conv->to(torch::kCUDA);
  norm->to(torch::kCUDA);
  const torch::Tensor x = torch::randn({2, 16, 40, 48}, torch::kCUDA);
  // Full float32 convolutions for this comparison (TF32 rounds the two weight sets differently).
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  const torch::Tensor folded = norm->after(*conv, x);
  const torch::Tensor unfolded = norm->forward(conv->forward(x));
  at::globalContext().setAllowTF32CuDNN(tf32);
  INFO("max difference " << (folded - unfolded).abs().max().item<float>());
  CHECK(torch::allclose(folded, unfolded, 1e-4, 1e-4));
  const mrcnn::train::MixedPrecision amp("bf16", torch::Device(torch::kCUDA));
  const mrcnn::train::MixedPrecision::Scope autocast(amp);
  CHECK(norm->after(*conv, x).scalar_type() == torch::kBFloat16);
}

TEST_CASE("mask pasting on CUDA writes what the per-mask ATen path writes", "[gpu]") {
  torch::manual_seed(9);
  const int64_t count = 80, height = 300, width = 400;
  const torch::Tensor masks = torch::rand({count, 28, 28});
  // Boxes of every kind: inside, across the edges, tiny, and wholly outside the image.
  const torch::Tensor xy = torch::rand({count, 2}) * torch::tensor({460.f, 360.f}) - 30;
  torch::Tensor boxes = torch::cat({xy, xy + torch::rand({count, 2}) * 150 + 0.2}, 1);
  boxes[0] = torch::tensor({500.f, 10.f, 560.f, 40.f});
  boxes[1] = torch::tensor({10.f, 10.f, 10.5f, 10.4f});
  const auto placements = mrcnn::ops::mask_placements(boxes, 28, height, width);
  const auto cuda_placements = mrcnn::ops::mask_placements(boxes.cuda(), 28, height, width);
  for (size_t i = 0; i < placements.size(); ++i) {
    INFO("detection " << i);
    CHECK(placements[i].cx0 == cuda_placements[i].cx0);
    CHECK(placements[i].cw == cuda_placements[i].cw);
    CHECK(placements[i].ch == cuda_placements[i].ch);
  }
  const torch::Tensor expected = mrcnn::ops::paste_masks_binary(masks, placements, 0.5);
  const torch::Tensor got = mrcnn::ops::paste_masks_binary(masks.cuda(), placements, 0.5);
  REQUIRE(got.device().is_cpu());
  REQUIRE(got.numel() == expected.numel());
  REQUIRE(expected.numel() > 100000);
  // Fused multiply-adds may move a probability within 1e-7 of 0.5 across the threshold.
  const int64_t differ = got.ne(expected).sum().item<int64_t>();
  INFO(differ << " of " << expected.numel() << " pixels differ");
  CHECK(differ <= 10);
}

TEST_CASE("NMS on CUDA keeps what the CPU kernel keeps", "[gpu]") {
  torch::manual_seed(2);
  const torch::Tensor xy = torch::rand({3000, 2}) * 500;
  const torch::Tensor boxes = torch::cat({xy, xy + torch::rand({3000, 2}) * 80 + 1}, 1);
  const torch::Tensor scores = torch::rand({3000});
  const torch::Tensor groups = torch::randint(0, 5, {3000});
  CHECK(torch::equal(mrcnn::ops::nms(boxes.cuda(), scores.cuda(), 0.5).cpu(), mrcnn::ops::nms(boxes, scores, 0.5)));
  CHECK(torch::equal(mrcnn::ops::batched_nms(boxes.cuda(), scores.cuda(), groups.cuda(), 0.5).cpu(),
                     mrcnn::ops::batched_nms(boxes, scores, groups, 0.5)));
}

TEST_CASE("the whole model on CUDA matches the CPU model", "[gpu]") {
  torch::manual_seed(3);
  mrcnn::model::ModelSettings settings;
  settings.backbone = "resnet18";
  settings.num_classes = 3;
  settings.min_size = {320};
  settings.max_size = 480;
  mrcnn::model::MaskRcnn cpu_model(settings), gpu_model(settings);
  {
    torch::NoGradGuard no_grad;
    auto src = cpu_model->named_parameters(true);
    auto dst = gpu_model->named_parameters(true);
    for (auto& item : src) dst[item.key()].copy_(item.value());
  }
  gpu_model->to(torch::kCUDA);
  cpu_model->prepare_for_inference();
  gpu_model->prepare_for_inference();
  const std::vector<torch::Tensor> images = {torch::rand({3, 300, 400})};
  const auto expected = cpu_model->detect(images);
  const auto got = gpu_model->detect({images[0].cuda()});
  REQUIRE(got.size() == 1);
  const auto& e = expected[0];
  const auto g_boxes = got[0].boxes.cpu(), g_scores = got[0].scores.cpu(), g_labels = got[0].labels.cpu();
  // Float rounding differs between devices, so near-tied detections may swap places: match each
  // of the strongest CPU detections to a CUDA one of the same class instead of comparing by rank.
  const int64_t n = std::min<int64_t>(e.boxes.size(0), 20);
  REQUIRE(n > 0);
  int64_t matched = 0;
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor same = (g_labels == e.labels[i]).nonzero().flatten();
    if (same.numel() == 0) continue;
    const torch::Tensor iou = mrcnn::ops::box_iou(e.boxes[i].unsqueeze(0), g_boxes.index_select(0, same))[0];
    const int64_t best = iou.argmax().item<int64_t>();
    if (iou[best].item<float>() > 0.99 &&
        std::abs(g_scores[same[best].item<int64_t>()].item<float>() - e.scores[i].item<float>()) < 1e-3)
      ++matched;
  }
  CHECK(matched >= n * 9 / 10);
}

namespace {

// Two squares and a disc on a grey image: a small batch with real targets for loss checks.
std::pair<std::vector<torch::Tensor>, std::vector<mrcnn::model::Target>> synthetic_batch(torch::Device device) {
  torch::Tensor image = torch::full({3, 128, 128}, 0.5);
  torch::Tensor masks = torch::zeros({3, 128, 128}, torch::kUInt8);
  masks[0].slice(0, 10, 50).slice(1, 10, 50).fill_(1);
  masks[1].slice(0, 60, 120).slice(1, 70, 110).fill_(1);
  const auto yy = torch::arange(128).view({-1, 1}), xx = torch::arange(128).view({1, -1});
  masks[2].copy_(((yy - 90).pow(2) + (xx - 30).pow(2) < 400).to(torch::kUInt8));
  for (int64_t k = 0; k < 3; ++k) image.index_put_({torch::indexing::Slice(), masks[k].to(torch::kBool)}, 0.2 + 0.3 * k);
  const torch::Tensor boxes = torch::tensor({{10.f, 10.f, 50.f, 50.f}, {70.f, 60.f, 110.f, 120.f}, {10.f, 70.f, 50.f, 110.f}});
  const torch::Tensor labels = torch::tensor({1, 1, 2}, torch::kLong);
  return {{image.to(device)}, {{boxes.to(device), labels.to(device), masks.to(device)}}};
}

double total_loss(mrcnn::model::MaskRcnn& net, const mrcnn::train::MixedPrecision& amp, torch::Device device) {
  auto [images, targets] = synthetic_batch(device);
  torch::manual_seed(11);  // the same anchor and ROI samples in every call
  std::map<std::string, at::Tensor> losses;
  {
    mrcnn::train::MixedPrecision::Scope autocast(amp);
    losses = net->losses(images, targets);
  }
  double total = 0;
  for (auto& [name, value] : losses) total += value.to(torch::kFloat).item<double>();
  return total;
}

mrcnn::model::ModelSettings amp_settings() {
  mrcnn::model::ModelSettings settings;
  settings.backbone = "resnet18";
  settings.trainable_bn = true;
  settings.num_classes = 3;
  settings.min_size = {128};
  settings.max_size = 128;
  settings.anchor_sizes = {{8}, {16}, {32}, {64}, {128}};
  return settings;
}

}  // namespace

TEST_CASE("frozen-norm training on CUDA (norms folded into the convolutions) gives the CPU's losses", "[gpu]") {
  mrcnn::model::ModelSettings settings = amp_settings();
  settings.trainable_bn = false;
  torch::manual_seed(13);
  mrcnn::model::MaskRcnn cpu_model(settings), gpu_model(settings);
  {
    torch::NoGradGuard no_grad;
    auto dst_params = gpu_model->named_parameters(true);
    for (auto& item : cpu_model->named_parameters(true)) dst_params[item.key()].copy_(item.value());
    auto dst_buffers = gpu_model->named_buffers(true);
    for (auto& item : cpu_model->named_buffers(true)) {  // frozen statistics, made non-trivial
      if (!item.value().is_floating_point()) continue;
      dst_buffers[item.key()].copy_(item.value().copy_(torch::rand_like(item.value()) * 0.5 + 0.75));
    }
  }
  gpu_model->to(torch::kCUDA);
  cpu_model->train();
  gpu_model->train();
  const bool tf32_conv = at::globalContext().allowTF32CuDNN(), tf32_matmul = at::globalContext().allowTF32CuBLAS();
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  auto [images, targets] = synthetic_batch(torch::kCPU);
  const auto expected = cpu_model->losses(images, targets, nullptr, /*deterministic_sampling=*/true);
  auto [gpu_images, gpu_targets] = synthetic_batch(torch::kCUDA);
  const auto got = gpu_model->losses(gpu_images, gpu_targets, nullptr, /*deterministic_sampling=*/true);
  at::globalContext().setAllowTF32CuDNN(tf32_conv);
  at::globalContext().setAllowTF32CuBLAS(tf32_matmul);
  for (const auto& [name, value] : expected) {
    const double cpu = value.item<double>(), gpu = got.at(name).item<double>();
    INFO(name << ": CUDA " << gpu << ", CPU " << cpu);
    CHECK(std::isfinite(gpu));
    CHECK(std::abs(gpu - cpu) <= 1e-3 * std::abs(cpu) + 1e-5);
  }
}

TEST_CASE("bf16 and fp16 autocast losses track float32 on the same batch and samples", "[gpu][amp]") {
  const torch::Device device(torch::kCUDA);
  torch::manual_seed(5);
  mrcnn::model::MaskRcnn net(amp_settings());
  net->to(device);
  net->train();
  const double fp32 = total_loss(net, mrcnn::train::MixedPrecision("off", device), device);
  for (const std::string mode : {"bf16", "fp16"}) {
    const mrcnn::train::MixedPrecision amp(mode, device);
    REQUIRE(amp.enabled());
    const double mixed = total_loss(net, amp, device);
    INFO(mode << ": " << mixed << " vs float32 " << fp32);
    CHECK(std::isfinite(mixed));
    CHECK(std::abs(mixed - fp32) < 0.05 * std::abs(fp32));
  }
}

TEST_CASE("fp16 loss scaling: clean steps unscale the gradients, an overflow skips and halves", "[gpu][amp]") {
  const torch::Device device(torch::kCUDA);
  torch::manual_seed(5);
  mrcnn::model::MaskRcnn net(amp_settings());
  net->to(device);
  net->train();
  std::vector<at::Tensor> params;
  for (auto& p : net->parameters())
    if (p.requires_grad()) params.push_back(p);
  mrcnn::train::MixedPrecision amp("fp16", device);
  REQUIRE(amp.scales_loss());
  const double scale = amp.loss_scale();

  // Reference gradients in float32, then the same loss scaled in fp16 autocast.
  auto [images, targets] = synthetic_batch(device);
  torch::manual_seed(11);
  auto losses = net->losses(images, targets);
  at::Tensor total = torch::zeros({}, images[0].options());
  for (auto& [name, value] : losses) total = total + value;
  net->zero_grad();
  total.backward();
  at::Tensor bias = net->named_parameters()["roi_heads.box_predictor.cls_score.bias"];
  const at::Tensor reference = bias.grad().clone();

  // From a random init the first scale (65536) overflows fp16 activation gradients: each such
  // step must be skipped with the scale halved, until one comes out clean.
  bool clean = false;
  double expected_scale = scale;
  for (int attempt = 0; attempt < 24 && !clean; ++attempt) {
    torch::manual_seed(11);
    {
      mrcnn::train::MixedPrecision::Scope autocast(amp);
      losses = net->losses(images, targets);
    }
    total = torch::zeros({}, images[0].options());
    for (auto& [name, value] : losses) total = total + value.to(torch::kFloat);
    net->zero_grad();
    amp.scale(total).backward();
    clean = amp.unscale(params);
    amp.update(!clean);
    if (!clean) expected_scale /= 2;
    REQUIRE(amp.loss_scale() == expected_scale);
  }
  INFO("loss scale after the overflows: " << amp.loss_scale());
  REQUIRE(clean);
  CHECK(amp.loss_scale() >= 1.0);
  // The predictor's bias gradient, unscaled, is the float32 one up to fp16 rounding.
  CHECK(torch::allclose(bias.grad(), reference, 0.05, 1e-3));

  const double before = amp.loss_scale();
  params.front().mutable_grad().fill_(std::numeric_limits<float>::infinity());
  CHECK_FALSE(amp.unscale(params));
  amp.update(true);
  CHECK(amp.loss_scale() == before / 2);
}
