// Training augmentations keep image, boxes and masks consistent: flip, colour jitter and the
// random crop that keeps instances.
#include <catch2/catch.hpp>

#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "data/transforms.h"

using mrcnn::Json;
using namespace mrcnn::data;

namespace {

// A 120x80 image with filled rectangles as instances (box == mask extent).
Sample rectangles() {
  Sample s;
  s.width = 120;
  s.height = 80;
  s.image = cv::Mat(80, 120, CV_8UC3, cv::Scalar(20, 40, 60));
  const std::vector<cv::Rect> rects = {{5, 5, 20, 15}, {60, 30, 30, 40}, {100, 2, 18, 70}};
  for (size_t k = 0; k < rects.size(); ++k) {
    const cv::Rect& r = rects[k];
    cv::Mat m = cv::Mat::zeros(80, 120, CV_8UC1);
    m(r).setTo(1);
    s.masks.push_back(m);
    s.image(r).setTo(cv::Scalar(200, 10 * k, 0));
    s.boxes.push_back({float(r.x), float(r.y), float(r.x + r.width), float(r.y + r.height)});
    s.labels.push_back(static_cast<int64_t>(k + 1));
  }
  return s;
}

void check_consistent(const Sample& s) {
  REQUIRE(s.boxes.size() == s.masks.size());
  REQUIRE(s.labels.size() == s.masks.size());
  for (size_t k = 0; k < s.masks.size(); ++k) {
    REQUIRE(s.masks[k].rows == s.image.rows);
    REQUIRE(s.masks[k].cols == s.image.cols);
    const cv::Rect r = cv::boundingRect(s.masks[k]);
    CHECK(s.boxes[k][0] == Approx(r.x));
    CHECK(s.boxes[k][1] == Approx(r.y));
    CHECK(s.boxes[k][2] == Approx(r.x + r.width));
    CHECK(s.boxes[k][3] == Approx(r.y + r.height));
  }
}

}  // namespace

TEST_CASE("horizontal flip mirrors the image, boxes and masks together", "[data][augment]") {
  Sample s = rectangles();
  horizontal_flip(s);
  check_consistent(s);
  CHECK(s.boxes[0][0] == Approx(120 - 25));
  CHECK(s.image.at<cv::Vec3b>(10, 120 - 10)[0] == 200);
}

TEST_CASE("random crop keeps at least one instance whole and the rest consistent", "[data][augment]") {
  std::mt19937_64 rng(7);
  int changed = 0;
  for (int trial = 0; trial < 40; ++trial) {
    Sample s = rectangles();
    random_crop(s, 0.4, 0.9, 0.3, rng);
    check_consistent(s);
    REQUIRE(s.image.cols == s.width);
    REQUIRE(s.image.rows == s.height);
    if (s.width == 120 && s.height == 80) continue;  // no window found: left as it was
    ++changed;
    CHECK(s.width >= 48);
    CHECK(s.width <= 108);
    REQUIRE_FALSE(s.boxes.empty());
    // At least one instance keeps its full area (a whole rectangle's pixel count).
    bool whole = false;
    for (const auto& m : s.masks) {
      const int area = cv::countNonZero(m);
      whole = whole || area == 20 * 15 || area == 30 * 40 || area == 18 * 70;
    }
    CHECK(whole);
  }
  CHECK(changed > 20);
}

TEST_CASE("random crop drops instances mostly outside the window", "[data][augment]") {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 40; ++trial) {
    Sample s = rectangles();
    const std::vector<cv::Mat> before = s.masks;
    random_crop(s, 0.3, 0.6, 0.9, rng);
    // With min_visible 0.9, every kept instance has at least 90% of its original area.
    for (const auto& m : s.masks) {
      const int area = cv::countNonZero(m);
      bool matches = false;
      for (const int original : {20 * 15, 30 * 40, 18 * 70}) matches = matches || area >= 0.9 * original - 1e-9;
      CHECK(matches);
    }
  }
}

TEST_CASE("augment applies the configured list and is deterministic for a seed", "[data][augment]") {
  const Json list = Json::parse(R"([{"type": "horizontal_flip", "prob": 0.5},
      {"type": "color_jitter", "prob": 1.0, "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05},
      {"type": "random_crop", "prob": 1.0, "min_scale": 0.5, "max_scale": 1.0, "min_visible": 0.3}])");
  Sample a = rectangles(), b = rectangles();
  std::mt19937_64 rng_a(11), rng_b(11);
  augment(a, list, rng_a);
  augment(b, list, rng_b);
  check_consistent(a);
  REQUIRE(a.image.size() == b.image.size());
  CHECK(cv::norm(a.image, b.image, cv::NORM_INF) == 0);
  CHECK(a.boxes == b.boxes);
  std::mt19937_64 rng(1);
  Sample c = rectangles();
  CHECK_THROWS_AS(augment(c, Json::parse(R"([{"type": "mosaic", "prob": 1.0}])"), rng), mrcnn::Error);
}
