#include "data/transforms.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "core/error.h"

namespace mrcnn::data {

void horizontal_flip(Sample& sample) {
  cv::flip(sample.image, sample.image, 1);
  for (auto& m : sample.masks) cv::flip(m, m, 1);
  const float w = static_cast<float>(sample.image.cols);
  for (auto& b : sample.boxes) b = {w - b[2], b[1], w - b[0], b[3]};
}

void random_crop(Sample& sample, double min_scale, double max_scale, double min_visible, std::mt19937_64& rng) {
  const int width = sample.image.cols, height = sample.image.rows;
  if (sample.boxes.empty()) return;
  std::uniform_real_distribution<double> scale(min_scale, max_scale), unit(0.0, 1.0);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int w = std::max(1, static_cast<int>(std::lround(scale(rng) * width)));
    const int h = std::max(1, static_cast<int>(std::lround(scale(rng) * height)));
    const int x0 = static_cast<int>(unit(rng) * (width - w + 1)) , y0 = static_cast<int>(unit(rng) * (height - h + 1));
    const cv::Rect window(std::min(x0, width - w), std::min(y0, height - h), w, h);
    bool holds_one = false;
    for (const auto& b : sample.boxes)
      holds_one = holds_one || (b[0] >= window.x && b[1] >= window.y && b[2] <= window.x + w && b[3] <= window.y + h);
    if (!holds_one) continue;
    Sample cropped;
    for (size_t k = 0; k < sample.masks.size(); ++k) {
      const cv::Mat part = sample.masks[k](window).clone();
      const double inside = cv::countNonZero(part), whole = cv::countNonZero(sample.masks[k]);
      if (inside == 0 || inside < min_visible * whole) continue;
      // A whole instance keeps its box (shifted); a cut one gets the box of what is left of its mask.
      const auto& b = sample.boxes[k];
      const float dx = static_cast<float>(window.x), dy = static_cast<float>(window.y);
      const cv::Rect r = cv::boundingRect(part);
      if (inside == whole)
        cropped.boxes.push_back({std::clamp(b[0] - dx, 0.f, float(w)), std::clamp(b[1] - dy, 0.f, float(h)),
                                 std::clamp(b[2] - dx, 0.f, float(w)), std::clamp(b[3] - dy, 0.f, float(h))});
      else
        cropped.boxes.push_back({static_cast<float>(r.x), static_cast<float>(r.y), static_cast<float>(r.x + r.width),
                                 static_cast<float>(r.y + r.height)});
      cropped.labels.push_back(sample.labels[k]);
      cropped.masks.push_back(part);
    }
    sample.image = sample.image(window).clone();
    sample.width = w;
    sample.height = h;
    sample.boxes = std::move(cropped.boxes);
    sample.labels = std::move(cropped.labels);
    sample.masks = std::move(cropped.masks);
    sample.mask_rles.clear();  // no longer the masks of this image
    return;
  }
}

namespace {

// Brightness, contrast and saturation factors in [1 - s, 1 + s]; hue shifted by up to h of a turn.
// f: float RGB on the 0-255 scale, changed in place.
void jitter_rgb(cv::Mat& f, const Json& params, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const double brightness = 1 + params["brightness"].get<double>() * unit(rng);
  const double contrast = 1 + params["contrast"].get<double>() * unit(rng);
  const double saturation = 1 + params["saturation"].get<double>() * unit(rng);
  const double hue = params["hue"].get<double>() * unit(rng);
  f *= brightness;
  cv::Mat gray;
  cv::cvtColor(f, gray, cv::COLOR_RGB2GRAY);
  const double mean = cv::mean(gray)[0];
  f.convertTo(f, -1, contrast, mean * (1 - contrast));  // (f - mean) * contrast + mean
  cv::cvtColor(f, gray, cv::COLOR_RGB2GRAY);
  cv::Mat gray3;
  cv::cvtColor(gray, gray3, cv::COLOR_GRAY2RGB);
  cv::addWeighted(f, saturation, gray3, 1 - saturation, 0, f);  // gray + (f - gray) * saturation
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
}

// Colour jitter of an 8-bit RGB image, or of bands 0-2 (taken as R, G, B) of a float image (on
// the same 0-255 scale) with 3 or more bands; the other bands, and images of 1 or 2 bands, are
// left as they are.
void color_jitter(cv::Mat& image, const Json& params, std::mt19937_64& rng) {
  cv::Mat f;
  if (image.type() == CV_8UC3) {
    image.convertTo(f, CV_32FC3);
    jitter_rgb(f, params, rng);
    f.convertTo(image, CV_8UC3);  // saturates to [0, 255]
    return;
  }
  if (image.channels() < 3) return;
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  cv::merge(std::vector<cv::Mat>(planes.begin(), planes.begin() + 3), f);
  jitter_rgb(f, params, rng);
  cv::min(cv::max(f, 0.0), 255.0, f);
  std::vector<cv::Mat> rgb;
  cv::split(f, rgb);
  std::copy(rgb.begin(), rgb.end(), planes.begin());
  cv::merge(planes, image);
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
    } else if (type == "random_crop") {
      if (apply)
        random_crop(sample, aug["min_scale"].get<double>(), aug["max_scale"].get<double>(),
                    aug["min_visible"].get<double>(), rng);
    } else {
      throw Error("data.augmentation: '" + type + "' is not available (horizontal_flip, color_jitter, random_crop)");
    }
  }
}

}  // namespace mrcnn::data
