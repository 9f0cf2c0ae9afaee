// Test helper: reads a data set with mrcnn's readers and prints what they produced as JSON
// ({"summary", "samples": [{image_id, image_path, height, width, boxes, labels, masks (RLE
// strings), pixel_sum}]}), so that the reference tests can compare with what an independent
// writer put in. Usage: dataset_dump FORMAT IMAGES ANNOTATIONS [NUM_CLASSES] [skip|fail]
#include <opencv2/core.hpp>

#include <iostream>
#include <string>

#include "core/error.h"
#include "data/datasets.h"
#include "io/json_file.h"

using namespace mrcnn;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: dataset_dump FORMAT IMAGES ANNOTATIONS [NUM_CLASSES] [skip|fail]\n";
    return 64;
  }
  try {
    data::DatasetSpec spec{argv[1], argv[2], argv[3],
                           argc > 5 && std::string(argv[5]) == "fail" ? data::InvalidPolicy::Fail
                                                                      : data::InvalidPolicy::Skip,
                           argc > 4 ? std::stoll(argv[4]) : 0};
    data::ReadReport report;
    std::vector<data::Sample> samples = data::read_dataset(spec, report);
    Json out = {{"summary", report.summary(spec.annotations)}, {"skipped_images", report.skipped_images},
                {"skipped_annotations", report.skipped_annotations}, {"samples", Json::array()}};
    for (auto& s : samples) {
      data::load_pixels(s, spec);
      Json boxes = Json::array(), masks = Json::array();
      for (const auto& b : s.boxes) boxes.push_back({b[0], b[1], b[2], b[3]});
      for (const auto& m : s.mask_rles) masks.push_back(eval::rle_to_string(m));
      out["samples"].push_back({{"image_id", s.image_id}, {"image_path", s.image_path}, {"height", s.height},
                                {"width", s.width}, {"boxes", boxes}, {"labels", s.labels}, {"masks", masks},
                                {"pixel_sum", cv::sum(s.image)[0] + cv::sum(s.image)[1] + cv::sum(s.image)[2]}});
    }
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const Error& e) {
    std::cerr << "dataset_dump: error: " << e.what() << "\n";
    return 2;
  }
}
