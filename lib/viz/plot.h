// Line charts and contact sheets drawn with OpenCV: axes with round-number ticks, grid, legend,
// title, optional log scale. Enough for training curves and precision-recall curves without a
// plotting dependency (the toolkit's packages are fixed; see docs/tools/mrcnn-visualize.md).
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace mrcnn::viz {

struct Series {
  std::string name;
  std::vector<double> x, y;
  cv::Scalar color{0, 0, 0};  // RGB; black: a palette colour by position
  bool dashed = false;
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;                  // for losses spanning decades
  bool legend_bottom_left = false;     // where curves leave room (precision-recall); else top right
  double x_min = NAN, x_max = NAN;     // NAN: from the data
  double y_min = NAN, y_max = NAN;
};

// The chart as an RGB image of the given size (white background).
cv::Mat draw_chart(const Chart& chart, cv::Size size = {640, 420});

// Round tick values covering [lo, hi], about `count` of them (1, 2, 5 x 10^k steps).
std::vector<double> nice_ticks(double lo, double hi, int count = 6);

// Images in a grid, each scaled to fit a cell of cell_width (aspect kept) with its caption
// under it; RGB.
cv::Mat contact_sheet(const std::vector<cv::Mat>& images, const std::vector<std::string>& captions, int columns,
                      int cell_width);

// Places images left to right on one white canvas with `gap` pixels between them.
cv::Mat side_by_side(const std::vector<cv::Mat>& images, int gap = 8);

}  // namespace mrcnn::viz
