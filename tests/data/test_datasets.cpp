// Data readers: the shapes generator, the COCO reader with its invalid-record policy, and the
// instance-mask PNG reader on Penn-Fudan's layout.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>


#include "core/error.h"
#include "data/datasets.h"
#include "data/shapes.h"
#include "io/atomic_file.h"
#include "temp_dir.h"
#include "io/json_file.h"

namespace fs = std::filesystem;
using mrcnn::Json;
using namespace mrcnn::data;

namespace {

ShapesOptions small_shapes() {
  ShapesOptions o;
  o.train_images = 6;
  o.val_images = 3;
  o.image_size = 96;
  return o;
}

}  // namespace

TEST_CASE("the shapes data set is deterministic and readable as COCO", "[data]") {
  const fs::path a = mrcnn::testing::fresh_temp_dir("shapes_a"), b = mrcnn::testing::fresh_temp_dir("shapes_b");
  write_shapes_dataset(a.string(), small_shapes());
  write_shapes_dataset(b.string(), small_shapes());
  CHECK(mrcnn::read_text_file((a / "train.json").string()) == mrcnn::read_text_file((b / "train.json").string()));
  CHECK(mrcnn::read_text_file((a / "val" / "100000.png").string()) ==
        mrcnn::read_text_file((b / "val" / "100000.png").string()));

  const Json doc = mrcnn::read_json_file((a / "train.json").string());
  ReadReport report;
  auto samples = read_dataset({"coco", (a / "train").string(), (a / "train.json").string(), InvalidPolicy::Fail, 4},
                              report);
  REQUIRE(samples.size() == 6);
  CHECK(report.annotations == static_cast<int64_t>(doc["annotations"].size()));
  CHECK(report.annotations >= 6);
  for (auto& s : samples) {
    load_pixels(s, {});
    CHECK(s.image.cols == 96);
    REQUIRE(s.masks.size() == s.boxes.size());
    for (size_t k = 0; k < s.boxes.size(); ++k) {
      CHECK(s.labels[k] >= 1);
      CHECK(s.labels[k] <= 3);
      const cv::Rect r = cv::boundingRect(s.masks[k]);
      CHECK(r.x == s.boxes[k][0]);
      CHECK(r.y == s.boxes[k][1]);
      CHECK(r.x + r.width == s.boxes[k][2]);
      CHECK(r.y + r.height == s.boxes[k][3]);
    }
  }
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST_CASE("COCO records that cannot train are skipped with a count, or fail", "[data]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("coco_policy");
  write_shapes_dataset(dir.string(), small_shapes());
  Json doc = mrcnn::read_json_file((dir / "train.json").string());
  doc["annotations"][0]["bbox"] = {5, 5, 0, 10};            // degenerate
  doc["annotations"][1]["category_id"] = 9;                 // unknown class
  doc["annotations"][2]["iscrowd"] = 1;                     // crowd: left out, not an error
  doc["images"][1]["file_name"] = "missing.png";            // missing image
  mrcnn::write_json_file((dir / "bad.json").string(), doc);
  ReadReport report;
  const auto samples =
      read_dataset({"coco", (dir / "train").string(), (dir / "bad.json").string(), InvalidPolicy::Skip, 4}, report);
  CHECK(samples.size() == 5);
  CHECK(report.skipped_images == 1);
  CHECK(report.skipped_annotations >= 2);
  CHECK(report.crowd_regions == 1);
  CHECK_THAT(report.summary("bad.json"), Catch::Contains("skipped 1 images"));
  ReadReport strict;
  CHECK_THROWS_WITH(
      read_dataset({"coco", (dir / "train").string(), (dir / "bad.json").string(), InvalidPolicy::Fail, 4}, strict),
      Catch::Contains("degenerate") && Catch::Contains("data.on_invalid is fail"));
  fs::remove_all(dir);
}

TEST_CASE("instance-mask PNG folders: one instance per id, label 1", "[data]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("mask_png");
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "masks");
  cv::Mat image(40, 50, CV_8UC3, cv::Scalar(10, 20, 30));
  cv::imwrite((dir / "images" / "a.png").string(), image);
  cv::Mat ids = cv::Mat::zeros(40, 50, CV_8UC1);
  ids(cv::Rect(5, 6, 10, 12)).setTo(1);
  ids(cv::Rect(30, 2, 8, 30)).setTo(2);
  cv::imwrite((dir / "masks" / "a_mask.png").string(), ids);
  cv::imwrite((dir / "images" / "b.png").string(), image);  // no mask file
  ReadReport report;
  auto samples = read_dataset({"mask_png", (dir / "images").string(), (dir / "masks").string()}, report);
  REQUIRE(samples.size() == 1);
  CHECK(report.skipped_images == 1);
  REQUIRE(samples[0].boxes.size() == 2);
  CHECK(samples[0].boxes[0] == std::array<float, 4>{5, 6, 15, 18});
  CHECK(samples[0].boxes[1] == std::array<float, 4>{30, 2, 38, 32});
  CHECK(samples[0].labels == std::vector<int64_t>{1, 1});
  load_pixels(samples[0], {});
  CHECK(cv::countNonZero(samples[0].masks[1]) == 8 * 30);
  fs::remove_all(dir);
}

TEST_CASE("Penn-Fudan reads with the boxes of its PASCAL annotations", "[data]") {
  const fs::path root = fs::path(MRCNN_SOURCE_DIR).parent_path() / "shared" / "data" / "pennfudan";
  INFO("the Penn-Fudan photos are part of the test environment (../shared/data/pennfudan)");
  REQUIRE(fs::exists(root / "PedMasks"));
  ReadReport report;
  const auto samples = read_dataset({"mask_png", (root / "PNGImages").string(), (root / "PedMasks").string()}, report);
  CHECK(samples.size() == 170);
  CHECK(report.annotations == 423);
  // FudanPed00001: (160, 182) - (302, 431) and (420, 171) - (535, 486), 1-based inclusive.
  REQUIRE(samples[0].boxes.size() == 2);
  CHECK(std::abs(samples[0].boxes[0][0] - 159) <= 2);
  CHECK(std::abs(samples[0].boxes[0][3] - 431) <= 2);
  CHECK(std::abs(samples[0].boxes[1][2] - 535) <= 2);
}
