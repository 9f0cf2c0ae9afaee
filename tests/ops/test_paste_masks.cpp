// Mask pasting as binary crops against the full-image pasting torchvision's postprocess does.
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include "model/transform.h"
#include "ops/paste_masks.h"

TEST_CASE("mask placements grow each box by the padding and clip it to the image", "[ops]") {
  const torch::Tensor boxes = torch::tensor({{10.f, 20.f, 38.f, 48.f}, {-20.f, -5.f, 10.f, 6.f}, {500.f, 0.f, 560.f, 9.f}});
  const auto p = mrcnn::ops::mask_placements(boxes, 28, 100, 200);
  REQUIRE(p.size() == 3);
  // 28 px box, mask 28 + 2 padding: grown by 30/28, centre 24 / 34.
  CHECK(p[0].x0 == 9);
  CHECK(p[0].w == 31);
  CHECK(p[0].cx0 == 9);
  CHECK(p[0].cw == 31);
  CHECK(p[0].ch == 31);
  CHECK(p[1].cx0 == 0);   // clipped at the left and top edges
  CHECK(p[1].cy0 == 0);
  CHECK(p[1].cw == p[1].x0 + p[1].w);
  CHECK(p[2].cw == 0);    // wholly right of the image
  CHECK(p[2].ch == 0);
}

TEST_CASE("binary crops hold what full-size pasting thresholds, crop by crop", "[ops]") {
  torch::manual_seed(4);
  const int64_t count = 12, height = 90, width = 120;
  const torch::Tensor masks = torch::rand({count, 1, 28, 28});
  const torch::Tensor xy = torch::rand({count, 2}) * torch::tensor({140.f, 110.f}) - 10;
  torch::Tensor boxes = torch::cat({xy, xy + torch::rand({count, 2}) * 60 + 0.5}, 1);
  boxes[0] = torch::tensor({130.f, 10.f, 150.f, 30.f});  // outside
  const auto placements = mrcnn::ops::mask_placements(boxes, 28, height, width);
  const torch::Tensor binary = mrcnn::ops::paste_masks_binary(masks, placements, 0.5);
  const torch::Tensor full = mrcnn::model::paste_masks_in_image(masks, boxes, {height, width}).gt(0.5);
  int64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto& p = placements[i];
    INFO("detection " << i);
    torch::Tensor crop_mask = torch::zeros({height, width}, torch::kBool);
    if (p.cw > 0) {
      const torch::Tensor crop = binary.narrow(0, offset, p.cw * p.ch).view({p.ch, p.cw}).to(torch::kBool);
      crop_mask.narrow(0, p.cy0, p.ch).narrow(1, p.cx0, p.cw).copy_(crop);
      offset += p.cw * p.ch;
    }
    CHECK(torch::equal(crop_mask, full[i][0]));
  }
  CHECK(offset == binary.numel());
  CHECK(full[0].sum().item<int64_t>() == 0);
  CHECK(full.sum().item<int64_t>() > 1000);  // the comparison covers real masks
}
