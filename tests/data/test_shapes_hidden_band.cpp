// The shapes set's hidden_band variant: RGBA images where one class-4 shape per image shows only
// in the 4th band; the RGB bands are those of the plain set (the first image, drawn before any
// hidden-band draw, is the plain set's first image exactly).
#include <catch2/catch.hpp>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/shapes.h"
#include "eval/rle.h"
#include "io/json_file.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mrcnn::data::ShapesOptions;

TEST_CASE("hidden_band shapes: class 4 only in the 4th band, RGB as the plain set", "[data]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("shapes_hidden");
  ShapesOptions options;
  options.train_images = 3;
  options.val_images = 1;
  options.image_size = 64;
  mrcnn::data::write_shapes_dataset((dir / "plain").string(), options);
  options.hidden_band = true;
  mrcnn::data::write_shapes_dataset((dir / "hidden").string(), options);
  const mrcnn::Json coco = mrcnn::read_json_file((dir / "hidden" / "train.json").string());
  CHECK(coco["categories"].size() == 4);
  for (const mrcnn::Json& image : coco["images"]) {
    const std::string name = image["file_name"].get<std::string>();
    const cv::Mat rgba = cv::imread((dir / "hidden" / "train" / name).string(), cv::IMREAD_UNCHANGED);
    REQUIRE(rgba.type() == CV_8UC4);
    cv::Mat band;
    cv::extractChannel(rgba, band, 3);
    int hidden = 0;
    for (const mrcnn::Json& a : coco["annotations"]) {
      if (a["image_id"] != image["id"] || a["category_id"] != 4) continue;
      ++hidden;
      auto bits = mrcnn::eval::decode_rle(
          mrcnn::eval::rle_from_string(a["segmentation"]["counts"].get<std::string>(), 64, 64));
      const cv::Mat mask = cv::Mat(64, 64, CV_8UC1, bits.data()) != 0;
      CHECK(cv::countNonZero(band != 200 & mask) == 0);  // bright inside
      CHECK(cv::countNonZero(band >= 200 & ~mask) == 0);  // dark outside
    }
    CHECK(hidden == 1);
  }
  cv::Mat plain = cv::imread((dir / "plain" / "train" / "1.png").string(), cv::IMREAD_UNCHANGED), first_rgb;
  cv::cvtColor(cv::imread((dir / "hidden" / "train" / "1.png").string(), cv::IMREAD_UNCHANGED), first_rgb,
               cv::COLOR_BGRA2BGR);
  CHECK(cv::norm(plain, first_rgb, cv::NORM_INF) == 0);
  fs::remove_all(dir);
}
