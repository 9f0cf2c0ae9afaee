// Fuzz target: the label-tool readers (data.*.format via, labelme, yolo_seg) and YOLO names files.
// The first byte picks the reader; the rest is the label file, read next to a small real image as
// a data set under the skip policy, its masks decoded as training does.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "data/datasets.h"
#include "data/label_formats.h"
#include "fuzzing.h"

namespace fs = std::filesystem;
namespace {

// This process's folder: images/a.png (8 x 6 pixels), labels/ and labelme/ for the label file.
const fs::path& folder() {
  static const fs::path dir = [] {
    const fs::path d = mrcnn::fuzz::scratch_file(nullptr, 0, ".labels.d");
    fs::remove_all(d);
    for (const char* sub : {"images", "labels", "labelme"}) fs::create_directories(d / sub);
    cv::imwrite((d / "images" / "a.png").string(), cv::Mat(6, 8, CV_8UC3, cv::Scalar(10, 20, 30)));
    std::atexit([] { std::error_code ec; fs::remove_all(folder(), ec); });
    mrcnn::fuzz::silence_logs();
    return d;
  }();
  return dir;
}

void write(const fs::path& path, const uint8_t* data, size_t size) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

void read_set(const std::string& format, const fs::path& annotations) {
  mrcnn::data::DatasetSpec spec{format, (folder() / "images").string(), annotations.string(),
                                mrcnn::data::InvalidPolicy::Skip, /*num_classes=*/4};
  mrcnn::data::ReadReport report;
  for (auto& sample : mrcnn::data::read_dataset(spec, report)) mrcnn::data::load_pixels(sample, spec);
  (void)report.summary(format);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const fs::path& dir = folder();
  const int which = data[0] % 4;
  mrcnn::fuzz::expect_clean_errors([&] {
    if (which == 0) {
      write(dir / "via.json", data + 1, size - 1);
      read_set("via", dir / "via.json");
    } else if (which == 1) {
      write(dir / "labelme" / "a.json", data + 1, size - 1);
      read_set("labelme", dir / "labelme");
    } else if (which == 2) {
      write(dir / "labels" / "a.txt", data + 1, size - 1);
      read_set("yolo_seg", dir / "labels");
    } else {
      write(dir / "data.yaml", data + 1, size - 1);
      (void)mrcnn::data::read_yolo_names((dir / "data.yaml").string());
    }
  });
  return 0;
}
