// Test helper: encodes a mask PNG (nonzero = 1) with mrcnn's RLE code and prints
// {"counts", "area", "bbox"} as JSON, so that the reference tests can compare with pycocotools.
// With --block H W X0 Y0 the PNG is encoded as a block placed at (X0, Y0) in an H x W image.
// With --decode COUNTS H W OUT.png it writes the decoded mask instead.
#include <opencv2/imgcodecs.hpp>

#include <iostream>
#include <string>

#include "eval/rle.h"
#include "io/json_file.h"

using namespace mrcnn;

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--decode" && argc == 6) {
      const eval::Rle rle = eval::rle_from_string(argv[2], std::stol(argv[3]), std::stol(argv[4]));
      std::vector<uint8_t> bits = eval::decode_rle(rle);
      for (auto& b : bits) b *= 255;
      cv::imwrite(argv[5], cv::Mat(static_cast<int>(rle.height), static_cast<int>(rle.width), CV_8UC1, bits.data()));
      return 0;
    }
    const bool block = mode == "--block";
    if (!(argc == 2 || (block && argc == 7))) {
      std::cerr << "usage: rle_tool MASK.png | --block H W X0 Y0 MASK.png | --decode COUNTS H W OUT.png\n";
      return 2;
    }
    const cv::Mat mask = cv::imread(argv[argc - 1], cv::IMREAD_GRAYSCALE);
    if (mask.empty()) throw std::runtime_error("cannot read mask");
    const eval::Rle rle = block ? eval::encode_rle_block(std::stol(argv[2]), std::stol(argv[3]), std::stol(argv[4]),
                                                         std::stol(argv[5]), mask.data, mask.rows, mask.cols)
                                : eval::encode_rle(mask.data, mask.rows, mask.cols);
    const auto bbox = rle.bbox();
    Json out = {{"counts", eval::rle_to_string(rle)},
                {"area", rle.area()},
                {"bbox", {bbox[0], bbox[1], bbox[2], bbox[3]}},
                {"roundtrip", eval::rle_from_string(eval::rle_to_string(rle), rle.height, rle.width).counts ==
                                  rle.counts}};
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "rle_tool: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
