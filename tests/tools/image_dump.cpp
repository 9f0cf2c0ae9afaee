// Test helper: decodes an image as the model would take it (io/image_bands: bands, pixel_max) and
// writes the float32 pixels, rows of interleaved bands, to OUT; prints {"rows", "cols",
// "channels"} as JSON, so that CLI tests can compare with what an independent reader decodes.
// Usage: image_dump IMAGE CHANNELS PIXEL_MAX OUT [BAND...]
#include <opencv2/core.hpp>

#include <iostream>
#include <string>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/image_bands.h"

using namespace mrcnn;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: image_dump IMAGE CHANNELS PIXEL_MAX OUT [BAND...]\n";
    return 64;
  }
  try {
    BandLayout layout;
    layout.channels = std::stoll(argv[2]);
    layout.pixel_max = std::stod(argv[3]);
    for (int i = 5; i < argc; ++i) layout.bands.push_back(std::stoi(argv[i]));
    cv::Mat image = read_image_bands(argv[1], layout);
    if (image.depth() != CV_32F) image.convertTo(image, CV_32F);  // the plain layout's 8-bit RGB
    const cv::Mat rows = image.isContinuous() ? image : image.clone();
    write_file_atomic(argv[4], std::string(reinterpret_cast<const char*>(rows.data), rows.total() * rows.elemSize()));
    std::cout << "{\"rows\": " << image.rows << ", \"cols\": " << image.cols << ", \"channels\": " << image.channels()
              << "}\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "image_dump: error: " << e.what() << "\n";
    return 2;
  }
}
