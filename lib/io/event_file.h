// TensorBoard event files (events.out.tfevents.*): scalars and PNG images as tf.summary writes
// them, so that `tensorboard --logdir RUN/tensorboard` shows a training run as it goes.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>

#include "io/tfrecord.h"

namespace mrcnn {

class EventFileWriter {
 public:
  // Creates log_dir if needed and a new event file in it.
  explicit EventFileWriter(const std::string& log_dir);

  void add_scalar(const std::string& tag, double value, int64_t step);
  // rgb: 8-bit RGB; stored PNG-encoded.
  void add_image(const std::string& tag, const cv::Mat& rgb, int64_t step);
  void flush() { records_.flush(); }
  const std::string& path() const { return records_.path(); }

 private:
  void write_event(const std::string& summary, int64_t step);
  TfRecordWriter records_;
};

}  // namespace mrcnn
