// On a GPU: every op and the whole model on CUDA against the CPU path.
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include "model/mask_rcnn.h"
#include "ops/boxes.h"
#include "ops/nms.h"
#include "ops/roi_align.h"

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
    CHECK(torch::allclose(gpu, cpu, 1e-4, 1e-5));
  }
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
