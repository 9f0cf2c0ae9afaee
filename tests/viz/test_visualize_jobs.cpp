// mrcnn-visualize's jobs: which results belong to which image file, which COCO images and objects
// are drawn, and what the drawing calls report.
#include <catch2/catch.hpp>

#include <filesystem>

#include "io/atomic_file.h"
#include "io/image_file.h"
#include "temp_dir.h"
#include "viz/visualize_jobs.h"

namespace fs = std::filesystem;
using namespace mrcnn;

namespace {

// Three 40x30 images (ids 5, 2, 9), objects of classes 1 and 2 on 2 and 5.
const char* const kThreeImages = R"({
    "images": [{"id": 5, "file_name": "sub/a.png", "height": 30, "width": 40},
               {"id": 2, "file_name": "b.png", "height": 30, "width": 40},
               {"id": 9, "file_name": "c.png", "height": 30, "width": 40}],
    "annotations": [
      {"id": 1, "image_id": 2, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0},
      {"id": 2, "image_id": 2, "category_id": 2, "bbox": [20, 5, 10, 10], "area": 100, "iscrowd": 0},
      {"id": 3, "image_id": 5, "category_id": 2, "bbox": [4, 4, 8, 8], "area": 64, "iscrowd": 0}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]})";

eval::CocoGroundTruth three_images() {
  return eval::CocoGroundTruth::from_json(nlohmann::json::parse(kThreeImages), "gt.json");
}

cv::Mat gray() { return cv::Mat(30, 40, CV_8UC3, cv::Scalar(90, 90, 90)); }

}  // namespace

TEST_CASE("image ids by file: the results' names, then the COCO file's, by name and basename", "[viz]") {
  viz::ResultsByImage results;
  results.id_of_file = {{"photos/x.png", 3}, {"x.png", 3}, {"b.png", 77}};
  CHECK(viz::image_ids_by_file(results, nullptr) == results.id_of_file);

  const eval::CocoGroundTruth gt = three_images();
  const auto ids = viz::image_ids_by_file(results, &gt);
  CHECK(ids.at("photos/x.png") == 3);  // kept: the COCO file does not name it
  CHECK(ids.at("b.png") == 2);         // the COCO file wins
  CHECK(ids.at("sub/a.png") == 5);
  CHECK(ids.at("a.png") == 5);
  CHECK(ids.size() == 6);
}

TEST_CASE("image_id_of looks up the path as given, then its basename", "[viz]") {
  const std::map<std::string, int64_t> ids = {{"photos/x.png", 3}, {"x.png", 4}, {"y.png", 8}};
  CHECK(viz::image_id_of(ids, "photos/x.png") == 3);
  CHECK(viz::image_id_of(ids, "elsewhere/x.png") == 4);
  CHECK(viz::image_id_of(ids, "/abs/path/y.png") == 8);
  CHECK_FALSE(viz::image_id_of(ids, "z.png").has_value());
  CHECK_FALSE(viz::image_id_of({}, "x.png").has_value());
}

TEST_CASE("select_coco_images: the first images by id, ground truth of the chosen classes", "[viz]") {
  const viz::CocoImages all = viz::select_coco_images(three_images(), nullptr, 0, {});
  CHECK(all.ids == std::vector<int64_t>{2, 5, 9});
  CHECK(all.truth.at(2).size() == 2);
  CHECK(all.truth.at(5).size() == 1);
  CHECK(all.truth.count(9) == 0);
  CHECK(all.detections.empty());
  CHECK(all.truth.at(5)[0] == &all.gt.annotations()[2]);  // points into the selection's own copy

  const viz::CocoImages two = viz::select_coco_images(three_images(), nullptr, 2, {2});
  CHECK(two.ids == std::vector<int64_t>{2, 5});
  REQUIRE(two.truth.at(2).size() == 1);
  CHECK(two.truth.at(2)[0]->category_id == 2);

  const eval::CocoGroundTruth gt = three_images();
  const nlohmann::json records = nlohmann::json::parse(R"([
    {"image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.9},
    {"image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5], "score": 0.8},
    {"image_id": 9, "category_id": 2, "bbox": [3, 3, 5, 5], "score": 0.7}])");
  const std::vector<eval::CocoObject> dts = eval::detections_from_json(records, "dt.json", gt);
  const viz::CocoImages with = viz::select_coco_images(three_images(), &dts, 1, {1});
  CHECK(with.ids == std::vector<int64_t>{2});
  CHECK(with.detections.at(9).size() == 2);  // detections are kept whole: compare filters them
  CHECK(with.detections.at(2)[0] == &dts[1]);
}

TEST_CASE("draw_detection_files draws every image and counts results of images not drawn", "[viz]") {
  const fs::path dir = testing::fresh_temp_dir("viz_detections");
  fs::create_directories(dir / "images");
  write_image_rgb((dir / "images" / "a.png").string(), gray());
  write_image_rgb((dir / "images" / "b.png").string(), gray());
  write_file_atomic((dir / "results.json").string(), R"([
    {"image_id": 1, "file_name": "a.png", "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9},
    {"image_id": 4, "file_name": "gone.png", "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9},
    {"image_id": 4, "file_name": "gone.png", "category_id": 2, "bbox": [5, 5, 10, 10], "score": 0.8}])");
  viz::DetectionFiles files{{(dir / "images").string()}, (dir / "results.json").string(), "", (dir / "out").string()};
  const viz::DetectionsDrawn drawn = viz::draw_detection_files(files, {});
  CHECK(drawn.images == 2);
  CHECK(drawn.results_not_drawn == 2);
  CHECK(drawn.images_not_drawn == 1);
  const cv::Mat a = read_image_rgb((dir / "out" / "a.png").string());
  const cv::Mat b = read_image_rgb((dir / "out" / "b.png").string());
  CHECK(cv::norm(b, gray()) == 0);  // no results: a plain copy
  CHECK(cv::norm(a, b) > 0);                                                 // its box is drawn

  viz::DrawOptions one;
  one.max_images = 1;
  files.output = (dir / "one").string();
  CHECK(viz::draw_detection_files(files, one).images == 1);
  CHECK(fs::exists(dir / "one" / "a.png"));
  CHECK_FALSE(fs::exists(dir / "one" / "b.png"));
  fs::remove_all(dir);
}

TEST_CASE("the COCO jobs draw every image and total the comparisons", "[viz]") {
  const fs::path dir = testing::fresh_temp_dir("viz_coco");
  fs::create_directories(dir / "images" / "sub");
  for (const char* name : {"sub/a.png", "b.png", "c.png"}) write_image_rgb((dir / "images" / name).string(), gray());
  write_file_atomic((dir / "gt.json").string(), kThreeImages);
  // On image 2: the cat found, a dog where there is none (and the real one missed); image 5's dog missed.
  write_file_atomic((dir / "dt.json").string(), R"([
    {"image_id": 2, "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9},
    {"image_id": 2, "category_id": 2, "bbox": [2, 18, 8, 8], "score": 0.8}])");
  viz::CocoSetFiles files{(dir / "gt.json").string(), (dir / "images").string(), "", (dir / "gt").string()};
  CHECK(viz::draw_coco_ground_truth(files, {}) == 3);
  for (const char* name : {"a.png", "b.png", "c.png"}) CHECK(fs::exists(dir / "gt" / name));

  files.results = (dir / "dt.json").string();
  files.output = (dir / "cmp").string();
  const viz::ComparisonTotals totals = viz::draw_coco_comparisons(files, {}, 0.5);
  CHECK(totals.images == 3);
  CHECK(totals.matched == 1);
  CHECK(totals.false_positives == 1);
  CHECK(totals.missed == 2);
  CHECK(read_image_rgb((dir / "cmp" / "b.png").string()).cols == 40 + 8 + 40);  // truth | predictions
  fs::remove_all(dir);
}
