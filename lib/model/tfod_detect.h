// The TF OD API family's detections as plain instances (eval::ImageDetections), what mrcnn-infer
// and evaluation consume: boxes in original-image pixels, labels 1-based, masks reframed into
// the image as the OD API does and run-length encoded at > 0.5.
#pragma once

#include <ATen/core/Tensor.h>

#include "eval/instances.h"

namespace mrcnn::model {

class TfodMaskRcnnImpl;

// Detections of one image (1, 3, H, W) float pixels in [0, 255] scoring at least score_threshold.
// The caller sets eval mode and the grad guard.
eval::ImageDetections tfod_detect_instances(TfodMaskRcnnImpl& net, const at::Tensor& image, float score_threshold);

}  // namespace mrcnn::model
