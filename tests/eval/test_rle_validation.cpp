// RLE masks and COCO segmentations from untrusted input: sizes and run sums checked where they
// are made, and the mask arithmetic safe (no division by zero, no endless loop) even without.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "eval/coco.h"
#include "eval/rle.h"

using namespace mrcnn::eval;
using mrcnn::Error;

namespace {

// A COCO ground truth of one 10 x 10 image and one annotation with this segmentation.
nlohmann::json ground_truth(const nlohmann::json& segmentation) {
  return {{"images", {{{"id", 1}, {"height", 10}, {"width", 10}}}},
          {"categories", {{{"id", 1}, {"name", "a"}}}},
          {"annotations",
           {{{"id", 7}, {"image_id", 1}, {"category_id", 1}, {"area", 1}, {"bbox", {0, 0, 1, 1}},
             {"segmentation", segmentation}}}}};
}

}  // namespace

TEST_CASE("mask sizes must be positive and at most kMaxMaskPixels", "[rle]") {
  CHECK_NOTHROW(check_mask_size(1, 1));
  CHECK_NOTHROW(check_mask_size(1, kMaxMaskPixels));
  CHECK_THROWS_WITH(check_mask_size(0, 5), Catch::Contains("[0, 5]") && Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(check_mask_size(5, 0), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(check_mask_size(-3, 5), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(check_mask_size(int64_t{1} << 32, int64_t{1} << 32), Catch::Contains("pixels"));
  CHECK_THROWS_WITH(check_mask_size(std::numeric_limits<int64_t>::max(), 4), Catch::Contains("pixels"));
}

TEST_CASE("compressed counts must sum exactly to height x width", "[rle]") {
  std::vector<uint8_t> mask(6 * 7, 0);
  mask[3 * 7 + 2] = mask[4 * 7 + 2] = 1;
  const Rle rle = encode_rle(mask.data(), 6, 7);
  const std::string text = rle_to_string(rle);
  CHECK(rle_from_string(text, 6, 7).counts == rle.counts);
  CHECK_THROWS_WITH(rle_from_string(text, 6, 8), Catch::Contains("sum to 42 pixels") && Catch::Contains("48"));
  CHECK_THROWS_WITH(rle_from_string(text, 6, 6), Catch::Contains("more than the 36 pixels"));
  CHECK_THROWS_WITH(rle_from_string("", 6, 7), Catch::Contains("sum to 0 pixels"));
  CHECK_THROWS_WITH(rle_from_string("", 0, 0), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(rle_from_string(text, 0, 7), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(rle_from_string(text, -6, -7), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(rle_from_string(std::string(40, 'o'), 6, 7), Catch::Contains("longer than 12 characters"));
}

TEST_CASE("uncompressed counts must sum exactly to height x width", "[rle]") {
  CHECK(rle_from_counts({3, 2, 1}, 2, 3).area() == 2);
  CHECK(rle_from_counts({0, 6}, 2, 3).area() == 6);
  CHECK_THROWS_WITH(rle_from_counts({3, 2}, 2, 3), Catch::Contains("sum to 5 pixels") && Catch::Contains("has 6"));
  CHECK_THROWS_WITH(rle_from_counts({3, 2, 4}, 2, 3), Catch::Contains("sum to 9 pixels"));
  CHECK_THROWS_WITH(rle_from_counts({}, 0, 3), Catch::Contains("must be positive"));
}

TEST_CASE("bbox and area of empty or degenerate RLEs do not divide by zero", "[rle]") {
  CHECK(Rle{0, 0, {}}.bbox() == std::array<double, 4>{0, 0, 0, 0});
  CHECK(Rle{0, 5, {3, 4}}.bbox() == std::array<double, 4>{0, 0, 0, 0});
  CHECK(Rle{5, 0, {3, 4}}.bbox() == std::array<double, 4>{0, 0, 0, 0});
  CHECK(Rle{0, 5, {3, 4}}.area() == 4);
  CHECK(decode_rle(Rle{0, 0, {}}).empty());
  CHECK_THROWS_AS(decode_rle(Rle{-1, 5, {}}), Error);
}

TEST_CASE("IoU and merge end on runs that do not sum to the size", "[rle]") {
  // Built without the checks, as a second line of defence: these looped forever.
  const Rle whole{4, 4, {0, 16}}, short_runs{4, 4, {2, 3}}, long_runs{4, 4, {2, 30}}, none{4, 4, {}};
  for (const Rle* other : {&short_runs, &long_runs, &none}) {
    const std::vector<double> iou = rle_iou_matrix({&whole}, {other}, {0});
    REQUIRE(iou.size() == 1);
    CHECK(std::isfinite(iou[0]));
    CHECK(rle_iou_matrix({other}, {&whole}, {1}).size() == 1);
    CHECK_NOTHROW(rle_merge({whole, *other}));
    CHECK_NOTHROW(rle_merge({*other, whole}, true));
  }
  CHECK(rle_iou_matrix({&whole}, {&whole}, {0}) == std::vector<double>{1.0});
}

TEST_CASE("polygons far outside the image cost the image's size, not the coordinates'", "[rle]") {
  const auto started = std::chrono::steady_clock::now();
  // A square around the whole image: every pixel is inside.
  const Rle all = rle_from_polygon({-2e7, -2e7, 2e7, -2e7, 2e7, 2e7, -2e7, 2e7}, 30, 40);
  CHECK(all.counts == std::vector<uint32_t>{0, 1200});
  // A sliver far away: nothing inside.
  CHECK(rle_from_polygon({5e7, 5e7, 9e7, 5e7, 9e7, 5.0001e7}, 30, 40).area() == 0);
  // A long thin triangle from far left to inside the image: its crossings inside, as for a short one.
  const Rle far = rle_from_polygon({-1e7, 10, 20, 10, 20, 20}, 30, 40);
  CHECK(far.area() > 0);
  CHECK(far.bbox()[0] == 0);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
}

TEST_CASE("polygon coordinates must be finite and within kMaxPolygonCoordinate", "[rle]") {
  CHECK_THROWS_WITH(rle_from_polygon({0, 0, 1e12, 0, 0, 5}, 10, 10), Catch::Contains("coordinate 2 is 1e+12"));
  CHECK_THROWS_AS(rle_from_polygon({0, 0, std::nan(""), 0, 0, 5}, 10, 10), Error);
  CHECK_THROWS_AS(rle_from_polygon({0, 0, 5, 0, 0, -INFINITY}, 10, 10), Error);
  CHECK_THROWS_WITH(rle_from_polygon({0, 0, 5, 0, 0, 5}, 0, 10), Catch::Contains("must be positive"));
}

TEST_CASE("COCO segmentations are checked where they are read, naming the annotation", "[rle]") {
  const auto error_of = [](const nlohmann::json& segmentation) {
    try {
      CocoGroundTruth::from_json(ground_truth(segmentation), "gt.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string where = "gt.json: annotations[0] (id 7): ";
  CHECK(error_of({{"size", {10, 10}}, {"counts", {100}}}) == "no error");
  CHECK(error_of({{"size", {10, 10}}, {"counts", "T3"}}) == "no error");
  CHECK(error_of({{"size", {0, 10}}, {"counts", {0}}}).rfind(where + "RLE \"size\": mask size [0, 10]", 0) == 0);
  CHECK_THAT(error_of({{"size", {-10, 10}}, {"counts", {100}}}), Catch::Contains("must be positive"));
  CHECK_THAT(error_of({{"size", {uint64_t{1} << 63, 1}}, {"counts", {100}}}), Catch::StartsWith(where + "RLE"));
  CHECK_THAT(error_of({{"size", {10.5, 10}}, {"counts", {100}}}), Catch::Contains("(integers), found a list"));
  CHECK_THAT(error_of({{"size", "x"}, {"counts", {100}}}), Catch::Contains("found \"x\""));
  CHECK_THAT(error_of({{"size", {10, 10}}, {"counts", {99}}}), Catch::Contains("sum to 99 pixels"));
  CHECK_THAT(error_of({{"size", {10, 10}}, {"counts", {1, "a"}}}), Catch::Contains("found \"a\" at 1"));
  CHECK_THAT(error_of({{"size", {10, 10}}, {"counts", {uint64_t{1} << 32, 1}}}), Catch::Contains("more than the 100"));
  CHECK_THAT(error_of({{"size", {10, 10}}, {"counts", {-1, 101}}}), Catch::Contains("non-negative"));
  // Compressed counts are decoded where the mask is made, as pycocotools does.
  const CocoGroundTruth gt = CocoGroundTruth::from_json(ground_truth({{"size", {10, 10}}, {"counts", "0"}}), "gt.json");
  CHECK_THROWS_WITH(object_mask(gt.annotations()[0], gt), Catch::StartsWith(where + "compressed RLE counts sum"));
  CHECK_THAT(error_of({{"size", {10, 10}}, {"counts", 5}}), Catch::Contains("found 5"));
  CHECK_THAT(error_of(5), Catch::StartsWith(where + "\"segmentation\" must be polygons or an RLE object, found 5"));
  CHECK_THAT(error_of({{0, 0, 1e12, 0, 5, 5}}), Catch::StartsWith(where + "polygon 0: coordinate 2 is 1e+12"));
  CHECK_THAT(error_of({{0, 0, 5, 0, 5, std::string(10000, 'x')}}), Catch::Contains("list of numbers"));
}

TEST_CASE("COCO images and ids: sizes positive and bounded, ids within 64 bits", "[rle]") {
  const auto error_of = [](const nlohmann::json& image) {
    nlohmann::json doc = ground_truth(nullptr);
    doc["images"][0] = image;
    try {
      CocoGroundTruth::from_json(doc, "gt.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of({{"id", 1}, {"height", 10}, {"width", 10}}) == "no error");
  CHECK(error_of({{"id", 1.0}}) == "no error");
  CHECK_THAT(error_of({{"id", 1}, {"height", 0}, {"width", 10}}),
             Catch::StartsWith("gt.json: images[0]: \"height\" is 0; expected a positive number"));
  CHECK_THAT(error_of({{"id", 1}, {"height", 10}, {"width", -4}}), Catch::Contains("\"width\" is -4"));
  CHECK_THAT(error_of({{"id", 1}, {"height", 10.5}, {"width", 10}}), Catch::Contains("\"height\" must be an integer"));
  CHECK_THAT(error_of({{"id", 1}, {"height", 1 << 30}, {"width", 1 << 30}}), Catch::Contains("pixels"));
  CHECK_THAT(error_of({{"id", uint64_t{1} << 63}}), Catch::Contains("\"id\" must be an integer, found 9223372036854775808"));
  CHECK_THAT(error_of({{"id", 1e300}}), Catch::Contains("\"id\" must be an integer"));
  CHECK_THAT(error_of({{"id", nlohmann::json::array({1, 2, 3})}}), Catch::Contains("found a list of 3 values"));
}

TEST_CASE("checking a mask without making it raises what making it raises", "[rle]") {
  // segm evaluation only checks the masks no IoU needs: the same errors, or none, as making them.
  const auto error_of = [](const auto& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (const std::string counts : {"T3", "52", "0", "!", "P;:>0", "T2", "ooooooooooooo", "6", "0`0"}) {
    INFO(counts);
    CHECK(error_of([&] { check_rle_string(counts, 10, 10); }) == error_of([&] { rle_from_string(counts, 10, 10); }));
  }
  CHECK(error_of([] { check_rle_string("T3", 0, 10); }) == error_of([] { rle_from_string("T3", 0, 10); }));
  CHECK(error_of([] { check_rle_counts({40, 60}, 10, 10); }) == "no error");
  CHECK(error_of([] { check_rle_counts({40, 59}, 10, 10); }) == error_of([] { rle_from_counts({40, 59}, 10, 10); }));
  for (const nlohmann::json& segmentation :
       {nlohmann::json{{"size", {10, 10}}, {"counts", "T3"}}, nlohmann::json{{"size", {10, 10}}, {"counts", "0"}},
        nlohmann::json{{"size", {10, 10}}, {"counts", {100}}}, nlohmann::json{{0, 0, 5, 0, 5, 5}},
        nlohmann::json{{0, 0, 5, 0, 5, 5}, {1, 1, 8, 1, 8, 8}}}) {
    INFO(segmentation.dump());
    for (const bool sized : {true, false}) {
      nlohmann::json doc = ground_truth(segmentation);
      if (!sized) doc["images"][0].erase("height");
      const CocoGroundTruth gt = CocoGroundTruth::from_json(doc, "gt.json");
      const CocoObject& object = gt.annotations()[0];
      CHECK(error_of([&] { check_object_mask(object, gt); }) == error_of([&] { object_mask(object, gt); }));
    }
  }
  CocoObject none;
  none.where = "dt.json: detection 0";
  const CocoGroundTruth gt = CocoGroundTruth::from_json(ground_truth(nullptr), "gt.json");
  CHECK(error_of([&] { check_object_mask(none, gt); }) == error_of([&] { object_mask(none, gt); }));
  CHECK(error_of([&] { object_mask(none, gt); }) == "dt.json: detection 0: has no \"segmentation\" (segm evaluation needs masks)");
}
