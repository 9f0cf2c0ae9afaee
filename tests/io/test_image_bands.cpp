// Decoding images of any band count and bit depth (io/image_bands.h): the plain RGB layout is
// decode_image_rgb exactly, 16-bit images scaled by their declared maximum equal their 8-bit
// version, bands are picked in order, and what does not fit is one error naming file and key.
#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/image_bands.h"
#include "temp_dir.h"

using mrcnn::BandLayout;
using mrcnn::decode_image_bands;

namespace {

std::string encoded(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> bytes;
  REQUIRE(cv::imencode(ext, image, bytes));
  return std::string(bytes.begin(), bytes.end());
}

// Every 8-bit value once per channel, in a 16 x 16 x 3 image (BGR as OpenCV writes it).
cv::Mat all_values() {
  cv::Mat image(16, 16, CV_8UC3);
  for (int i = 0; i < 256; ++i) image.at<cv::Vec3b>(i / 16, i % 16) = cv::Vec3b(i, 255 - i, (i * 7) % 256);
  return image;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.type() == b.type() && a.size() == b.size() && cv::norm(a, b, cv::NORM_INF) == 0;
}

}  // namespace

TEST_CASE("the plain RGB layout decodes 8-bit images as decode_image_rgb does", "[io][bands]") {
  const std::string png = encoded(all_values(), ".png");
  CHECK(same(decode_image_bands(png, "a.png", BandLayout{}), mrcnn::decode_image_rgb(png, "a.png")));
  BandLayout declared;
  declared.pixel_max = 255;
  CHECK(same(decode_image_bands(png, "a.png", declared), mrcnn::decode_image_rgb(png, "a.png")));
}

TEST_CASE("16-bit images scaled by their declared maximum are their 8-bit version exactly", "[io][bands]") {
  const cv::Mat eight = all_values();
  cv::Mat expected;
  mrcnn::decode_image_rgb(encoded(eight, ".png"), "a.png").convertTo(expected, CV_32F);
  for (const auto& [factor, pixel_max] : {std::pair{257.0, 65535.0}, std::pair{16.0, 4080.0}}) {
    cv::Mat sixteen;
    eight.convertTo(sixteen, CV_16U, factor);
    BandLayout layout;
    layout.pixel_max = pixel_max;
    for (const char* ext : {".png", ".tiff"}) {
      INFO(ext << " x" << factor);
      CHECK(same(decode_image_bands(encoded(sixteen, ext), "b", layout), expected));
    }
  }
}

TEST_CASE("a 16-bit image without a declared maximum is refused naming file and key", "[io][bands]") {
  cv::Mat sixteen;
  all_values().convertTo(sixteen, CV_16U, 257);
  BandLayout layout;
  layout.set_key = "data.val";
  CHECK_THROWS_WITH(decode_image_bands(encoded(sixteen, ".png"), "x/b.png", layout),
                    Catch::StartsWith("x/b.png: 16-bit image, but data.val.pixel_max is not set"));
}

TEST_CASE("bands are picked by index in file order, RGBA and gray included", "[io][bands]") {
  cv::Mat bgra(2, 3, CV_8UC4, cv::Scalar(10, 20, 30, 40));  // file order R=30 G=20 B=10 A=40
  BandLayout layout;
  layout.channels = 2;
  layout.bands = {3, 0};
  const cv::Mat picked = decode_image_bands(encoded(bgra, ".png"), "c.png", layout);
  REQUIRE(picked.type() == CV_32FC2);
  CHECK(picked.at<cv::Vec2f>(1, 2) == cv::Vec2f(40, 30));
  layout.bands = {4, 0};
  CHECK_THROWS_WITH(decode_image_bands(encoded(bgra, ".png"), "c.png", layout),
                    "c.png: data.train.bands names band 4, the image has 4 bands (0-3)");
  layout.channels = 1;
  layout.bands = {};
  const cv::Mat gray(2, 3, CV_8UC1, cv::Scalar(77));
  CHECK(decode_image_bands(encoded(gray, ".png"), "g.png", layout).at<float>(0, 0) == 77.f);
  CHECK_THROWS_WITH(decode_image_bands(encoded(bgra, ".png"), "c.png", layout),
                    Catch::StartsWith("c.png: image has 4 bands, the model takes 1 (model.input_channels;"));
}

TEST_CASE("display_rgb draws bands 0-2, or the first band as gray", "[io][bands]") {
  cv::Mat four(1, 2, CV_32FC4, cv::Scalar(300, 20.4f, 10, 90));
  CHECK(mrcnn::display_rgb(four).at<cv::Vec3b>(0, 1) == cv::Vec3b(255, 20, 10));
  cv::Mat one(1, 2, CV_32FC1, cv::Scalar(12));
  CHECK(mrcnn::display_rgb(one).at<cv::Vec3b>(0, 0) == cv::Vec3b(12, 12, 12));
}

TEST_CASE("band files next to the labelled file are stacked in the order of bands", "[io][bands]") {
  const auto dir = mrcnn::testing::fresh_temp_dir("band_files");
  for (int band = 1; band <= 5; ++band)
    REQUIRE(cv::imwrite((dir / ("scene_B" + std::to_string(band) + ".png")).string(),
                        cv::Mat(3, 4, CV_16UC1, cv::Scalar(band * 1000))));
  BandLayout layout;
  layout.channels = 5;
  layout.bands = {5, 1, 2, 3, 4};
  layout.band_files = "{stem}_B{band}.png";
  layout.pixel_max = 10000;
  const cv::Mat stack = mrcnn::read_image_bands((dir / "scene.tif").string(), layout);
  REQUIRE(stack.type() == CV_32FC(5));
  const float* pixel = stack.ptr<float>(2) + 5 * 3;
  CHECK(std::vector<float>(pixel, pixel + 5) == std::vector<float>{127.5f, 25.5f, 51.f, 76.5f, 102.f});
  REQUIRE(cv::imwrite((dir / "scene_B4.png").string(), cv::Mat(3, 5, CV_16UC1, cv::Scalar(1))));
  CHECK_THROWS_WITH(mrcnn::read_image_bands((dir / "scene.tif").string(), layout),
                    Catch::EndsWith("scene_B4.png: band is 5x3, the image's first band 4x3"));
  layout.bands = {1, 6};
  layout.channels = 2;
  CHECK_THROWS_WITH(mrcnn::read_image_bands((dir / "scene.tif").string(), layout), Catch::Contains("scene_B6.png"));
}
