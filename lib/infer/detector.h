// Inference for the tools, without libtorch in the interface: a configured model with loaded
// weights on a device, from RGB images to instances with RLE masks in image coordinates.
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "io/image_bands.h"
#include "io/json_file.h"
#include "eval/instances.h"

namespace mrcnn::infer {

struct DetectorOptions {
  std::string weights;         // .safetensors, torch.save .pth/.pt, or an mrcnn checkpoint
  DeviceSpec device;           // resolved (Cpu or Cuda)
  bool allow_partial = false;  // load what fits, report the rest
  int threads = 0;             // CPU threads for libtorch; 0: its default
  std::string precision = "auto";  // auto, fp32, or bf16/fp16 autocast of the forward pass (infer.precision)
  bool cudnn_benchmark = false;    // CUDA: cuDNN times its algorithms per new shape (infer.cudnn_benchmark)
};

class Detector {
 public:
  // resolved_config: a resolved experiment configuration, either family (model.arch). Throws
  // Error for weights that are missing, unreadable or do not fit the configured model. The TF OD
  // API family also reads a TF checkpoint (options.weights: a prefix, a training folder, a
  // SavedModel), runs in fp32 only and takes RGB images.
  Detector(const Json& resolved_config, const DetectorOptions& options);
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Throws Error (without a file name) when the model cannot take an image of this size: one so
  // elongated (1x4000) that resizing leaves a side of 0 pixels. Safe to call from another thread.
  void check_image_size(int64_t height, int64_t width) const;

  // How images are read for this model: the bands it was trained on (model.input_channels,
  // data.train.bands and data.train.pixel_max of its configuration).
  const BandLayout& band_layout() const;

  // images: as band_layout() decodes them (8-bit RGB by default). Detections scoring below score_threshold are dropped. fixed_scale 0: the
  // model's resize (min_size/max_size); else every image is resized by this factor (tiles).
  std::vector<eval::ImageDetections> detect(const std::vector<cv::Mat>& images, float score_threshold,
                                            double fixed_scale = 0);

  std::string device_name() const;
  // The forward pass's precision: fp32, bf16 or fp16 (infer.precision "auto" resolved).
  std::string precision() const;
  // Peak GPU memory since the first batch (MiB; 0 on the CPU).
  double peak_gpu_memory_mb() const;
  int64_t num_classes() const;
  // The most detections the model keeps per image (model.roi.detections_per_img).
  int64_t max_detections() const;
  // Whether detect() takes fixed_scale (tiles): not the TF OD API family (model.arch tf_faster_rcnn).
  bool takes_fixed_scale() const;
  // The (height, width) the model resizes an image of this size to (min_size/max_size; the TF
  // family: model.tf.resizer, before padding).
  std::pair<int64_t, int64_t> input_size(int64_t height, int64_t width) const;

  // The model and its device, opaque outside detector.cpp (which also builds the model for
  // detector_weights.h).
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mrcnn::infer
