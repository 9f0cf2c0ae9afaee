// From a MaskRcnn module to plain instances with RLE masks: shared by the Detector (lib/infer)
// and by validation during training, which evaluates the module being trained.
#pragma once

#include <opencv2/core.hpp>

#include <vector>

#include "eval/instances.h"
#include "model/mask_rcnn.h"

namespace mrcnn::model {

// 8-bit RGB (H, W, 3) → float (3, H, W) in [0, 1] on the device.
at::Tensor image_to_tensor(const cv::Mat& rgb, const torch::Device& device);

// The same from (H, W, 3) uint8 pixels already in a tensor; pinned host pixels reach a GPU
// without the host waiting for the copy.
at::Tensor pixels_to_image(const at::Tensor& pixels, const torch::Device& device);

// Detections of (3, H, W) images in [0, 1] scoring at least score_threshold, masks pasted into
// the original image and run-length encoded. The caller sets the mode (eval) and grad guards.
// resize: the net's own transform when null (min_size/max_size), else this one (a fixed scale).
std::vector<eval::ImageDetections> detect_instances(MaskRcnnImpl& net, const std::vector<at::Tensor>& images,
                                                    float score_threshold, const Transform* resize = nullptr);

}  // namespace mrcnn::model
