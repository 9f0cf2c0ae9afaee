#include "io/event_file.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "core/error.h"
#include "io/protobuf_wire.h"

namespace mrcnn {
namespace {

// Field numbers of tensorflow/core/util/event.proto and framework/summary.proto.
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1, kValueSimpleValue = 2, kValueImage = 4;
constexpr uint32_t kImageHeight = 1, kImageWidth = 2, kImageColorspace = 3, kImageEncoded = 4;

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event_file_path(const std::string& log_dir) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  if (!std::filesystem::is_directory(log_dir, ec)) throw Error(log_dir + ": cannot create the TensorBoard folder");
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  // TensorBoard's naming; the pid keeps two writers of one second apart.
  return (std::filesystem::path(log_dir) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(wall_time())) +
                                            "." + host + "." + std::to_string(getpid())))
      .string();
}

}  // namespace

EventFileWriter::EventFileWriter(const std::string& log_dir) : records_(event_file_path(log_dir)) {
  std::string event;
  proto::put_double_field(event, kEventWallTime, wall_time());
  proto::put_bytes_field(event, kEventFileVersion, "brain.Event:2");
  records_.write(event);
  records_.flush();
}

void EventFileWriter::write_event(const std::string& summary, int64_t step) {
  std::string event;
  proto::put_double_field(event, kEventWallTime, wall_time());
  proto::put_varint_field(event, kEventStep, static_cast<uint64_t>(step));
  proto::put_bytes_field(event, kEventSummary, summary);
  records_.write(event);
}

void EventFileWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  proto::put_bytes_field(v, kValueTag, tag);
  proto::put_float_field(v, kValueSimpleValue, static_cast<float>(value));
  std::string summary;
  proto::put_bytes_field(summary, kSummaryValue, v);
  write_event(summary, step);
}

void EventFileWriter::add_image(const std::string& tag, const cv::Mat& rgb, int64_t step) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> png;
  cv::imencode(".png", bgr, png);
  std::string image;
  proto::put_varint_field(image, kImageHeight, static_cast<uint64_t>(rgb.rows));
  proto::put_varint_field(image, kImageWidth, static_cast<uint64_t>(rgb.cols));
  proto::put_varint_field(image, kImageColorspace, 3);  // RGB
  proto::put_bytes_field(image, kImageEncoded, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
  std::string v;
  proto::put_bytes_field(v, kValueTag, tag);
  proto::put_bytes_field(v, kValueImage, image);
  std::string summary;
  proto::put_bytes_field(summary, kSummaryValue, v);
  write_event(summary, step);
}

}  // namespace mrcnn
