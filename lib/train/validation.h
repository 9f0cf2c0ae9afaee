// Validation during training: COCO bbox and segm mAP of the model being trained, on the
// configured val set (or the images data.val_fraction held out), through the eval library.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "data/datasets.h"
#include "eval/coco.h"
#include "io/json_file.h"
#include "model/mask_rcnn.h"

namespace mrcnn::train {

class Validator {
 public:
  // samples: the val images (annotations read, pixels not yet); gt: their ground truth.
  Validator(std::vector<data::Sample> samples, data::DatasetSpec spec, eval::CocoGroundTruth gt);

  // {"bbox": {"AP": ..}, "segm": {"AP": ..}, "images": N, "seconds": s}. Leaves the module in
  // training mode.
  Json run(model::MaskRcnnImpl& net, const torch::Device& device, int batch_size = 2);

  size_t size() const { return samples_.size(); }

 private:
  std::vector<data::Sample> samples_;
  data::DatasetSpec spec_;
  eval::CocoGroundTruth gt_;
};

// The ground truth of samples as a COCO document (RLE masks, iscrowd 0), for sets that have no
// COCO file of their own (mask PNG folders, the held-out part of a training set).
Json coco_document(const std::vector<data::Sample>& samples, int64_t num_classes);

}  // namespace mrcnn::train
