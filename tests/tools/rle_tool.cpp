// Test helper: encodes a mask PNG (nonzero = 1) with mrcnn's RLE code and prints
// {"counts", "area", "bbox"} as JSON, so that the reference tests can compare with pycocotools.
// With --block H W X0 Y0 the PNG is encoded as a block placed at (X0, Y0) in an H x W image.
// With --decode COUNTS H W OUT.png it writes the decoded mask instead. With --batch REQUEST.json
// it answers {"polygons": [...], "merges": [...], "ious": [...]} requests (see
// tests/reference/test_mask_utils_vs_pycocotools.py) for the other mask utilities.
#include <opencv2/imgcodecs.hpp>

#include <iostream>
#include <string>

#include "eval/rle.h"
#include "io/json_file.h"

using namespace mrcnn;

namespace {

eval::Rle rle_of(const Json& r) {
  return eval::rle_from_string(r["counts"].get<std::string>(), r["size"][0].get<int64_t>(), r["size"][1].get<int64_t>());
}

Json rle_json(const eval::Rle& rle) {
  return {{"size", {rle.height, rle.width}}, {"counts", eval::rle_to_string(rle)}};
}

Json answer(const Json& request) {
  Json out = Json::object();
  out["polygons"] = Json::array();
  for (const auto& p : request["polygons"])
    out["polygons"].push_back(rle_json(eval::rle_from_polygon(p["xy"].get<std::vector<double>>(),
                                                               p["h"].get<int64_t>(), p["w"].get<int64_t>())));
  out["merges"] = Json::array();
  for (const auto& m : request["merges"]) {
    std::vector<eval::Rle> masks;
    for (const auto& r : m["masks"]) masks.push_back(rle_of(r));
    out["merges"].push_back(rle_json(eval::rle_merge(masks, m["intersect"].get<bool>())));
  }
  out["ious"] = Json::array();
  for (const auto& q : request["ious"]) {
    const std::vector<uint8_t> crowd = q["crowd"].get<std::vector<uint8_t>>();
    std::vector<double> iou;
    if (q["kind"] == "box") {
      std::vector<eval::Box> d, g;
      for (const auto& b : q["dt"]) d.push_back(b.get<eval::Box>());
      for (const auto& b : q["gt"]) g.push_back(b.get<eval::Box>());
      iou = eval::box_iou_matrix(d, g, crowd);
    } else {
      std::vector<eval::Rle> d, g;
      for (const auto& r : q["dt"]) d.push_back(rle_of(r));
      for (const auto& r : q["gt"]) g.push_back(rle_of(r));
      std::vector<const eval::Rle*> dp, gp;
      for (const auto& r : d) dp.push_back(&r);
      for (const auto& r : g) gp.push_back(&r);
      iou = eval::rle_iou_matrix(dp, gp, crowd);
    }
    out["ious"].push_back(iou);
  }
  out["areas"] = Json::array();
  out["bboxes"] = Json::array();
  for (const auto& r : request["masks"]) {
    const eval::Rle rle = rle_of(r);
    out["areas"].push_back(rle.area());
    const auto b = rle.bbox();
    out["bboxes"].push_back({b[0], b[1], b[2], b[3]});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--batch" && argc == 3) {
      std::cout << answer(read_json_file(argv[2])).dump() << "\n";
      return 0;
    }
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
