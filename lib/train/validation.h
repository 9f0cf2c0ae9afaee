// Validation during training: COCO bbox and segm mAP of the model being trained, on the
// configured val set (or the images data.val_fraction held out), through the eval library.
#pragma once

#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "data/label_map.h"
#include "eval/coco.h"
#include "io/image_file.h"
#include "io/json_file.h"
#include "train/trainable_model.h"

namespace mrcnn::train {

class ProcessGroup;

class Validator {
 public:
  // samples: the val images (annotations read, pixels not yet); gt: their ground truth.
  Validator(std::vector<data::Sample> samples, data::DatasetSpec spec, eval::CocoGroundTruth gt);

  // {"bbox": {"AP": ..}, "segm": {"AP": ..}, "images": N, "seconds": s}, without segm for a model
  // without masks (TrainableModel::has_masks). Leaves the module in
  // training mode. overlay_count: how many of the first images to draw with their detections
  // (score >= 0.5), kept in overlays(). With a process group, each rank detects on every
  // size()-th image, the detections are gathered, and rank 0 scores them (the others get {}).
  Json run(TrainableModel& net, const torch::Device& device, int batch_size = 2, int overlay_count = 0,
           ProcessGroup* group = nullptr);

  size_t size() const { return samples_.size(); }
  // The drawn images of the last run (RGB), with the names of the val set's categories.
  const std::vector<cv::Mat>& overlays() const { return overlays_; }
  // Names for the overlays' tags (default: the val set's category names).
  void set_labels(data::LabelMap labels) { labels_ = std::move(labels); }
  const data::LabelMap& labels() const { return labels_; }
  // data.max_image_pixels: a val image with more pixels (by its annotated size) is an error naming it.
  void set_max_image_pixels(int64_t max_pixels) { max_image_pixels_ = max_pixels; }
  // The model family's image size check (the loader's check_image_size): a val image it refuses is
  // an error naming it, before the forward pass (which would fail inside libtorch).
  void set_image_size_check(std::function<void(int64_t, int64_t)> check) { check_size_ = std::move(check); }
  // The forward pass under autocast to this type (validation_autocast); none: the model's own type.
  void set_autocast(std::optional<at::ScalarType> dtype) { autocast_ = dtype; }

 private:
  void check_size(const data::Sample& sample) const;  // check_size_, naming the image

  std::vector<data::Sample> samples_;
  data::DatasetSpec spec_;
  eval::CocoGroundTruth gt_;
  data::LabelMap labels_;
  std::vector<cv::Mat> overlays_;
  int64_t runs_ = 0;
  int64_t max_image_pixels_ = kDefaultMaxImagePixels;
  std::optional<at::ScalarType> autocast_;
  std::function<void(int64_t, int64_t)> check_size_;
};

// The precision of validation as mrcnn-infer runs the model: infer.precision (precision), auto
// resolved for device; a model in float64 (train.dtype) validates in float64, which autocast would
// not touch; fp16 off CUDA validates in fp32 with a warning (training does not stop for an
// inference setting). Logs the choice once.
std::optional<at::ScalarType> validation_autocast(const std::string& precision, const torch::Device& device,
                                                  bool float64_model);

}  // namespace mrcnn::train
