// Augmentations of images with other band counts (float, on the 0-255 scale): colour jitter
// changes bands 0-2 as it changes an 8-bit RGB image and leaves further bands, and images of 1
// band, as they are; flips move every band.
#include <catch2/catch.hpp>

#include <opencv2/imgproc.hpp>

#include "data/transforms.h"

using mrcnn::Json;
using namespace mrcnn::data;

namespace {

const Json kJitter = Json::parse(R"([{"type": "color_jitter", "prob": 1.0, "brightness": 0.3, "contrast": 0.3,
                                      "saturation": 0.3, "hue": 0.05}])");

Sample with_image(const cv::Mat& image) {
  Sample s;
  s.image = image;
  s.height = image.rows;
  s.width = image.cols;
  return s;
}

}  // namespace

TEST_CASE("colour jitter changes bands 0-2 of a 4-band image as it changes 8-bit RGB", "[data][bands]") {
  cv::Mat rgb(8, 9, CV_8UC3);
  cv::randu(rgb, 0, 256);
  cv::Mat four;
  std::vector<cv::Mat> planes;
  cv::split(rgb, planes);
  planes.push_back(cv::Mat(8, 9, CV_8UC1, cv::Scalar(77)));
  cv::merge(planes, four);
  four.convertTo(four, CV_32F);
  Sample eight = with_image(rgb.clone()), bands = with_image(four.clone());
  std::mt19937_64 rng_a(5), rng_b(5);
  augment(eight, kJitter, rng_a);
  augment(bands, kJitter, rng_b);
  std::vector<cv::Mat> got;
  cv::split(bands.image, got);
  cv::Mat first3, expected;
  cv::merge(std::vector<cv::Mat>(got.begin(), got.begin() + 3), first3);
  eight.image.convertTo(expected, CV_32F);
  CHECK(cv::norm(first3, expected, cv::NORM_INF) <= 0.5001);  // the 8-bit path rounds, the float one does not
  cv::Mat before;
  rgb.convertTo(before, CV_32F);
  CHECK(cv::norm(first3, before, cv::NORM_INF) > 1);  // the jitter did change them
  CHECK(cv::countNonZero(got[3] != 77.f) == 0);
  Sample gray = with_image(cv::Mat(4, 4, CV_32FC1, cv::Scalar(10)));
  augment(gray, kJitter, rng_a);
  CHECK(cv::countNonZero(gray.image != 10.f) == 0);
}

TEST_CASE("a flip moves every band of a 5-band image", "[data][bands]") {
  cv::Mat five(2, 3, CV_32FC(5), cv::Scalar::all(0));
  five.ptr<float>(1)[5 * 0 + 4] = 9.f;  // band 4 of pixel (1, 0)
  Sample s = with_image(five);
  horizontal_flip(s);
  CHECK(s.image.ptr<float>(1)[5 * 2 + 4] == 9.f);
  CHECK(s.image.ptr<float>(1)[5 * 0 + 4] == 0.f);
}
