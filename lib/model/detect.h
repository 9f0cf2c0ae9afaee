// From a MaskRcnn module to plain instances with RLE masks: shared by the Detector (lib/infer)
// and by validation during training, which evaluates the module being trained.
#pragma once

#include <opencv2/core.hpp>

#include <vector>

#include "eval/instances.h"
#include "model/mask_rcnn.h"

namespace mrcnn::model {

// The tensor type of a pipeline image's pixels: uint8 for CV_8UC3 RGB, float for CV_32FC(N).
at::ScalarType pixel_dtype(const cv::Mat& image);

// 8-bit RGB (H, W, 3), or N bands of float on the same 0-255 scale (io/image_bands.h) → float
// (C, H, W) in [0, 1] on the device.
at::Tensor image_to_tensor(const cv::Mat& image, const torch::Device& device);

// The same from (H, W, C) pixels already in a tensor (uint8 or float, divided by 255);
// pinned host pixels reach a GPU without the host waiting for the copy.
at::Tensor pixels_to_image(const at::Tensor& pixels, const torch::Device& device);

// Detections of (C, H, W) images in [0, 1] scoring at least score_threshold, masks pasted into
// the original image and run-length encoded. The caller sets the mode (eval) and grad guards.
// resize: the net's own transform when null (min_size/max_size), else this one (a fixed scale).
std::vector<eval::ImageDetections> detect_instances(MaskRcnnImpl& net, const std::vector<at::Tensor>& images,
                                                    float score_threshold, const Transform* resize = nullptr);

}  // namespace mrcnn::model
