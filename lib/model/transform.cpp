#include "model/transform.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "ops/paste_masks.h"

namespace mrcnn::model {
namespace F = torch::nn::functional;

Transform Transform::at_fixed_scale(double scale) const {
  Transform fixed(settings_);
  fixed.fixed_scale_ = scale;
  return fixed;
}

ImageSize Transform::resized_size(ImageSize original, int64_t min_size) const {
  const auto [h, w] = original;
  // torchvision computes these in float32 tensors, then the scale in Python float.
  const double min_side = static_cast<float>(std::min(h, w));
  const double max_side = static_cast<float>(std::max(h, w));
  const double scale = fixed_scale_ > 0 ? fixed_scale_
                                        : std::min(static_cast<double>(min_size) / min_side,
                                                   static_cast<double>(settings_.max_size) / max_side);
  // F.interpolate(scale_factor=scale, recompute_scale_factor=True): floor(size * scale).
  const ImageSize resized{static_cast<int64_t>(std::floor(static_cast<double>(h) * scale)),
                          static_cast<int64_t>(std::floor(static_cast<double>(w) * scale))};
  // torchvision's interpolate fails on such an image too ("Input and output sizes should be greater
  // than 0"); the caller names the file.
  if (resized.first < 1 || resized.second < 1)
    throw Error("image of " + std::to_string(w) + "x" + std::to_string(h) +
                " pixels is too elongated for the model: fitting its long side into model.max_size (" +
                std::to_string(settings_.max_size) + ") leaves its short side 0 pixels (the long side may be at "
                "most model.max_size times the short one)");
  return resized;
}

int64_t Transform::pick_min_size(std::mt19937* rng, const Target* target) const {
  if (settings_.min_size.size() == 1) return settings_.min_size.back();
  std::uniform_int_distribution<size_t> pick(0, settings_.min_size.size() - 1);
  if (target && target->seed) {
    std::mt19937 own(static_cast<uint32_t>(derived_seed(target->seed, 3)));
    return settings_.min_size[pick(own)];
  }
  return rng ? settings_.min_size[pick(*rng)] : settings_.min_size.back();
}

BatchShape Transform::batch_shape(const std::vector<ImageSize>& originals, std::mt19937* rng,
                                  const std::vector<Target>* targets) const {
  int64_t max_h = 0, max_w = 0;
  for (size_t i = 0; i < originals.size(); ++i) {
    const auto [h, w] = resized_size(originals[i], pick_min_size(rng, targets ? &(*targets)[i] : nullptr));
    max_h = std::max(max_h, h);
    max_w = std::max(max_w, w);
  }
  const int64_t d = settings_.size_divisible;
  return {{(max_h + d - 1) / d * d, (max_w + d - 1) / d * d}, {max_h, max_w}};
}

ImageBatch Transform::batch(const std::vector<at::Tensor>& images, std::mt19937* rng,
                            std::vector<Target>* targets, ImageSize pad_at_least) const {
  ImageBatch out;
  const auto bands = static_cast<int64_t>(settings_.image_mean.size());
  const at::Tensor mean = torch::tensor(settings_.image_mean, torch::kFloat).view({bands, 1, 1});
  const at::Tensor std = torch::tensor(settings_.image_std, torch::kFloat).view({bands, 1, 1});
  std::vector<at::Tensor> resized;
  for (const auto& image : images) {
    TORCH_CHECK(image.dim() == 3 && image.size(0) == bands, "expected a (", bands, ", H, W) image, got ", image.sizes());
    const int64_t min_size = pick_min_size(rng, targets ? &(*targets)[out.image_sizes.size()] : nullptr);
    const ImageSize original{image.size(1), image.size(2)};
    const ImageSize size = resized_size(original, min_size);
    const at::Tensor normalised = (image - mean.to(image.device())) / std.to(image.device());
    resized.push_back(F::interpolate(normalised.unsqueeze(0), F::InterpolateFuncOptions()
                                                                  .size(std::vector<int64_t>{size.first, size.second})
                                                                  .mode(torch::kBilinear)
                                                                  .align_corners(false))
                          .squeeze(0));
    out.original_sizes.push_back(original);
    out.image_sizes.push_back(size);
    if (targets) {
      Target& t = (*targets)[out.image_sizes.size() - 1];
      t.boxes = resize_boxes(t.boxes, original, size);
      if (t.masks.defined() && t.masks.size(0) > 0)
        t.masks = F::interpolate(t.masks.unsqueeze(1).to(torch::kFloat),
                                 F::InterpolateFuncOptions().size(std::vector<int64_t>{size.first, size.second}))
                      .select(1, 0)
                      .to(torch::kUInt8);
      else if (t.masks.defined())
        t.masks = torch::zeros({0, size.first, size.second}, t.masks.options());
    }
  }
  int64_t max_h = 0, max_w = 0;
  for (const auto& [h, w] : out.image_sizes) {
    max_h = std::max(max_h, h);
    max_w = std::max(max_w, w);
  }
  const int64_t d = settings_.size_divisible;
  max_h = std::max((max_h + d - 1) / d * d, pad_at_least.first);
  max_w = std::max((max_w + d - 1) / d * d, pad_at_least.second);
  out.tensor = torch::zeros({static_cast<int64_t>(images.size()), bands, max_h, max_w}, resized[0].options());
  for (size_t i = 0; i < resized.size(); ++i)
    out.tensor[i].narrow(1, 0, resized[i].size(1)).narrow(2, 0, resized[i].size(2)).copy_(resized[i]);
  return out;
}

at::Tensor resize_boxes(const at::Tensor& boxes, ImageSize from, ImageSize to) {
  // Ratios as float32 tensors divided, as torchvision computes them.
  const float ratio_h = static_cast<float>(to.first) / static_cast<float>(from.first);
  const float ratio_w = static_cast<float>(to.second) / static_cast<float>(from.second);
  const auto xyxy = boxes.unbind(1);
  return torch::stack({xyxy[0] * ratio_w, xyxy[1] * ratio_h, xyxy[2] * ratio_w, xyxy[3] * ratio_h}, 1);
}

std::vector<PastedMask> paste_masks(const at::Tensor& masks, const at::Tensor& boxes, ImageSize image_size) {
  const int64_t count = masks.size(0);
  std::vector<PastedMask> pasted(count);
  if (count == 0) return pasted;
  const int64_t m = masks.size(-1);
  const std::vector<ops::MaskPlacement> placements =
      ops::mask_placements(boxes, m, image_size.first, image_size.second);
  const at::Tensor square = masks.reshape({count, m, m});
  for (int64_t i = 0; i < count; ++i) {
    pasted[i].x0 = placements[i].cx0;
    pasted[i].y0 = placements[i].cy0;
    pasted[i].probs = ops::pasted_mask_probs(square[i], placements[i]);
  }
  return pasted;
}

at::Tensor paste_masks_in_image(const at::Tensor& masks, const at::Tensor& boxes, ImageSize image_size) {
  const auto [im_h, im_w] = image_size;
  at::Tensor result = torch::zeros({masks.size(0), 1, im_h, im_w}, masks.options());
  const std::vector<PastedMask> pasted = paste_masks(masks, boxes, image_size);
  for (size_t i = 0; i < pasted.size(); ++i) {
    const PastedMask& p = pasted[i];
    if (p.probs.numel() == 0) continue;
    result[i][0].narrow(0, p.y0, p.probs.size(0)).narrow(1, p.x0, p.probs.size(1)).copy_(p.probs);
  }
  return result;
}

void Transform::to_original(std::vector<Detections>& detections, const ImageBatch& batch, bool paste_into_image) const {
  for (size_t i = 0; i < detections.size(); ++i) {
    Detections& d = detections[i];
    d.boxes = resize_boxes(d.boxes, batch.image_sizes[i], batch.original_sizes[i]);
    if (paste_into_image && d.masks.defined()) d.masks = paste_masks_in_image(d.masks, d.boxes, batch.original_sizes[i]);
  }
}

}  // namespace mrcnn::model
