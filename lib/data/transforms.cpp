#include "data/transforms.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace mrcnn::data {

void horizontal_flip(Sample& sample) {
  cv::flip(sample.image, sample.image, 1);
  for (auto& m : sample.masks) cv::flip(m, m, 1);
  const float w = static_cast<float>(sample.image.cols);
  for (auto& b : sample.boxes) b = {w - b[2], b[1], w - b[0], b[3]};
}

namespace {

// Brightness, contrast and saturation factors in [1 - s, 1 + s]; hue shifted by up to h of a turn.
void color_jitter(cv::Mat& rgb, const Json& params, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  cv::Mat f;
  rgb.convertTo(f, CV_32FC3);
  const double brightness = 1 + params["brightness"].get<double>() * unit(rng);
  const double contrast = 1 + params["contrast"].get<double>() * unit(rng);
  const double saturation = 1 + params["saturation"].get<double>() * unit(rng);
  const double hue = params["hue"].get<double>() * unit(rng);
  f *= brightness;
  cv::Mat gray;
  cv::cvtColor(f, gray, cv::COLOR_RGB2GRAY);
  const double mean = cv::mean(gray)[0];
  f = (f - mean) * contrast + mean;
  cv::cvtColor(f, gray, cv::COLOR_RGB2GRAY);
  cv::Mat gray3;
  cv::cvtColor(gray, gray3, cv::COLOR_GRAY2RGB);
  f = gray3 + (f - gray3) * saturation;
  if (hue != 0) {
    cv::Mat clipped, hsv;
    cv::min(cv::max(f, 0.0), 255.0, clipped);
    clipped /= 255.0;
    cv::cvtColor(clipped, hsv, cv::COLOR_RGB2HSV);  // H in degrees for float images
    for (auto it = hsv.begin<cv::Vec3f>(); it != hsv.end<cv::Vec3f>(); ++it) {
      float h = (*it)[0] + static_cast<float>(hue * 360.0);  // degrees for float images
      if (h >= 360.f) h -= 360.f;
      if (h < 0.f) h += 360.f;
      (*it)[0] = h;
    }
    cv::cvtColor(hsv, f, cv::COLOR_HSV2RGB);
    f *= 255.0;
  }
  f.convertTo(rgb, CV_8UC3);  // saturates to [0, 255]
}

}  // namespace

void augment(Sample& sample, const Json& augmentations, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> chance(0.0, 1.0);
  for (const auto& aug : augmentations) {
    const std::string type = aug["type"].get<std::string>();
    const bool apply = chance(rng) < aug["prob"].get<double>();
    if (type == "horizontal_flip") {
      if (apply) horizontal_flip(sample);
    } else if (type == "color_jitter") {
      if (apply) color_jitter(sample.image, aug, rng);
    } else {
      throw Error("data.augmentation: '" + type + "' is not available in this version (horizontal_flip, color_jitter)");
    }
  }
}

}  // namespace mrcnn::data
