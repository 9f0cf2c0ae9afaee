#include "viz/overlay.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace mrcnn::viz {

cv::Scalar class_color(int64_t class_id) {
  // A fixed palette of well-separated colours (RGB), indexed by class id as the TF OD API does.
  static const cv::Scalar kPalette[] = {
      {230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},  {245, 130, 48}, {145, 30, 180},
      {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 212}, {0, 128, 128}, {220, 190, 255},
      {170, 110, 40}, {255, 250, 200}, {128, 0, 0},   {170, 255, 195}, {128, 128, 0}, {255, 215, 180},
      {0, 0, 128},    {128, 128, 128},
  };
  constexpr int64_t n = sizeof(kPalette) / sizeof(kPalette[0]);
  return kPalette[((class_id % n) + n) % n];
}

namespace {

// Tints the mask's pixels and outlines them, working on the mask's bounding box only: a full-image
// copy per detection would cost gigabytes on the large photos tiled inference runs on.
void tint_mask(cv::Mat& canvas, const eval::Instance& inst, const OverlayStyle& style) {
  if (inst.mask.height != canvas.rows || inst.mask.width != canvas.cols || inst.mask.area() == 0) return;
  const auto b = inst.mask.bbox();
  const cv::Rect box(static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]), static_cast<int>(b[3]));
  std::vector<uint8_t> bits = eval::decode_rle_crop(inst.mask, box.x, box.y, box.width, box.height);
  const cv::Mat mask(box.height, box.width, CV_8UC1, bits.data());
  const cv::Scalar color = class_color(inst.label);
  cv::Mat region = canvas(box);
  cv::Mat blended;
  cv::addWeighted(region, 1.0 - style.alpha, cv::Mat(region.size(), region.type(), color), style.alpha, 0, blended);
  blended.copyTo(region, mask);
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE, box.tl());
  cv::drawContours(canvas, contours, -1, color * 0.6, std::max(1, style.line_thickness / 2), cv::LINE_AA);
}

}  // namespace

cv::Mat draw_instances(const cv::Mat& rgb, const std::vector<eval::Instance>& instances,
                       const data::LabelMap& labels, const OverlayStyle& style) {
  cv::Mat canvas = rgb.clone();
  std::vector<const eval::Instance*> chosen;
  for (const auto& inst : instances)
    if (inst.score >= style.score_threshold && (style.classes.empty() || style.classes.count(inst.label)))
      chosen.push_back(&inst);
  std::stable_sort(chosen.begin(), chosen.end(), [](auto* a, auto* b) { return a->score > b->score; });
  if (static_cast<int>(chosen.size()) > style.max_boxes) chosen.resize(style.max_boxes);

  // Masks first (lowest score underneath), then boxes and tags on top.
  for (auto it = chosen.rbegin(); it != chosen.rend(); ++it) tint_mask(canvas, **it, style);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double font_scale = std::max(0.4, std::min(canvas.rows, canvas.cols) / 1000.0);
  for (const eval::Instance* inst : chosen) {
    const cv::Scalar color = class_color(inst->label);
    const cv::Point p1(static_cast<int>(std::lround(inst->box[0])), static_cast<int>(std::lround(inst->box[1])));
    const cv::Point p2(static_cast<int>(std::lround(inst->box[2])), static_cast<int>(std::lround(inst->box[3])));
    cv::rectangle(canvas, p1, p2, color, style.line_thickness, cv::LINE_AA);
    char tag[256];
    if (style.show_scores)
      std::snprintf(tag, sizeof tag, "%s: %d%%", labels.name(inst->label).c_str(),
                    static_cast<int>(std::lround(inst->score * 100)));
    else
      std::snprintf(tag, sizeof tag, "%s", labels.name(inst->label).c_str());
    int baseline = 0;
    const cv::Size text = cv::getTextSize(tag, font, font_scale, 1, &baseline);
    const int tag_h = text.height + baseline + 4;
    // Above the box when there is room, else just inside it; never past the right edge.
    int x = std::clamp(p1.x, 0, std::max(0, canvas.cols - text.width - 4));
    int y = p1.y - tag_h >= 0 ? p1.y - tag_h : std::clamp(p1.y, 0, std::max(0, canvas.rows - tag_h));
    cv::rectangle(canvas, cv::Rect(x, y, text.width + 4, tag_h), color, cv::FILLED);
    cv::putText(canvas, tag, cv::Point(x + 2, y + text.height + 2), font, font_scale, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
  return canvas;
}

std::string OutputNames::claim(const std::string& image_path, int64_t id) {
  const std::string stem = std::filesystem::path(image_path).stem().string();
  std::string name = stem;
  // stem_<id> can itself be another image's stem: count on until the name is free.
  for (int n = 1; !taken_.insert(name).second; ++n)
    name = stem + "_" + std::to_string(id) + (n > 1 ? "_" + std::to_string(n) : "");
  return name + ".png";
}

}  // namespace mrcnn::viz
