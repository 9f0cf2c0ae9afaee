#include "train/validation.h"

#include <torch/torch.h>

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "core/precision.h"
#include "data/loader.h"
#include "eval/coco_eval.h"
#include "model/autocast.h"
#include "model/detect.h"
#include "eval/instances.h"
#include "train/distributed.h"
#include "viz/overlay.h"

namespace mrcnn::train {
namespace {

// A decoded image's (H, W, C) pixels as a tensor of their own type (uint8, or float bands).
at::Tensor pixel_tensor(const cv::Mat& image) {
  const cv::Mat contiguous = image.isContinuous() ? image : image.clone();
  return torch::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, contiguous.channels()},
                          model::pixel_dtype(image))
      .clone();
}

}  // namespace

void Validator::check_size(const data::Sample& sample) const {
  if (!check_size_) return;
  try {
    check_size_(sample.image.rows, sample.image.cols);
  } catch (const Error& e) {
    throw Error("validation: " + sample.image_path + ": " + e.what());
  }
}

Validator::Validator(std::vector<data::Sample> samples, data::DatasetSpec spec, eval::CocoGroundTruth gt)
    : samples_(std::move(samples)), spec_(std::move(spec)), gt_(std::move(gt)) {
  for (const auto& c : gt_.categories()) labels_.set(c.id, c.name);
}

Json Validator::run(TrainableModel& net, const torch::Device& device, int batch_size, int overlay_count,
                    ProcessGroup* group) {
  overlays_.clear();
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  net.module().eval();
  // This rank's share: every size()-th image from its rank on.
  std::vector<size_t> mine;
  for (size_t i = group ? group->rank() : 0; i < samples_.size(); i += group ? group->size() : 1) mine.push_back(i);
  nlohmann::json results = nlohmann::json::array();
  for (size_t first = 0; first < mine.size(); first += batch_size) {
    std::vector<at::Tensor> images;
    std::vector<int64_t> ids;
    std::vector<cv::Mat> pixels;
    for (size_t j = first; j < std::min(mine.size(), first + batch_size); ++j) {
      data::Sample sample = samples_[mine[j]];
      sample.mask_rles.clear();  // only the pixels are needed
      data::check_pixel_limit(sample, max_image_pixels_);
      data::load_pixels(sample, spec_);
      check_size(sample);
      images.push_back(net.image(pixel_tensor(sample.image), device, torch::kFloat));
      ids.push_back(sample.image_id);
      pixels.push_back(sample.image);
    }
    const model::AutocastScope autocast(device.type(), autocast_);
    const auto detections = net.detect(images, 0.0f);
    for (size_t k = 0; k < detections.size(); ++k) {
      if (static_cast<int>(overlays_.size()) < overlay_count) {
        viz::OverlayStyle style;
        style.score_threshold = 0.5f;
        overlays_.push_back(viz::draw_instances(pixels[k], detections[k].instances, labels_, style));
      }
      for (const auto& record : eval::to_coco_results(detections[k], ids[k])) results.push_back(nlohmann::json(record));
    }
  }
  net.train();
  ++runs_;
  if (group) {
    const std::vector<std::string> parts = group->all_gather(results.dump(), "val" + std::to_string(runs_));
    if (group->rank() != 0) return Json::object();
    results = nlohmann::json::array();
    for (const std::string& part : parts)
      for (auto& record : nlohmann::json::parse(part)) results.push_back(std::move(record));
  }
  Json out;
  const std::vector<eval::CocoObject> objects = eval::detections_from_json(results, "validation", gt_);
  std::vector<eval::IouType> types = {eval::IouType::Bbox};
  if (net.has_masks()) types.push_back(eval::IouType::Segm);  // a box-only model's results have no masks
  for (const auto type : types) out[eval::iou_type_name(type)] = eval::stats_json(eval::evaluate(gt_, objects, type));
  out["images"] = samples_.size();
  out["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::optional<at::ScalarType> validation_autocast(const std::string& precision, const torch::Device& device,
                                                  bool float64_model) {
  if (float64_model) {
    log::info("validation precision: float64 (train.dtype float64; infer.precision {} applies to float32 models)",
              precision);
    return std::nullopt;
  }
  const PrecisionChoice choice = resolve_precision(precision, device.is_cuda() ? device.index() : -1);
  if (choice.precision == "fp16" && !device.is_cuda()) {
    log::warn("infer.precision fp16 needs a CUDA device: validation on {} runs in fp32", device.str());
    return std::nullopt;
  }
  if (choice.reason.empty()) log::info("validation precision {} (infer.precision)", choice.precision);
  else log::info("validation precision auto: {} ({})", choice.precision, choice.reason);
  return model::autocast_type(choice.precision, device.type());
}

}  // namespace mrcnn::train
