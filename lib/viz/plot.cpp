#include "viz/plot.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace mrcnn::viz {
namespace {

const int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kInk(40, 40, 40), kGrid(225, 225, 225);

cv::Scalar palette(size_t i) {
  // Tableau 10 (RGB): distinguishable, and readable on white.
  static const cv::Scalar colors[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                      {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                      {188, 189, 34},  {23, 190, 207}};
  return colors[i % 10];
}

// 8 pixels on, 5 off, along the segment.
void dashed_line(cv::Mat& canvas, cv::Point a, cv::Point b, const cv::Scalar& color) {
  const double length = std::hypot(b.x - a.x, b.y - a.y);
  for (double t = 0; t < length; t += 13) {
    const double t1 = std::min(length, t + 8);
    const cv::Point p(static_cast<int>(a.x + (b.x - a.x) * t / length), static_cast<int>(a.y + (b.y - a.y) * t / length));
    const cv::Point q(static_cast<int>(a.x + (b.x - a.x) * t1 / length),
                      static_cast<int>(a.y + (b.y - a.y) * t1 / length));
    cv::line(canvas, p, q, color, 2, cv::LINE_AA);
  }
}

std::string tick_text(double v, double step, bool log_scale) {
  char text[32];
  if (log_scale) {
    std::snprintf(text, sizeof text, "%g", v);
  } else if (v == 0) {
    std::snprintf(text, sizeof text, "0");
  } else if (std::abs(v) >= 1e5 || step < 1e-3) {
    std::snprintf(text, sizeof text, "%.0e", v);
  } else {
    const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(text, sizeof text, "%.*f", decimals, v);
  }
  return text;
}

void put_text(cv::Mat& canvas, const std::string& text, cv::Point at, double scale, const cv::Scalar& color,
              int thickness = 1) {
  cv::putText(canvas, text, at, kFont, scale, color, thickness, cv::LINE_AA);
}

cv::Size text_size(const std::string& text, double scale, int thickness = 1) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, thickness, &baseline);
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, count - 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return ticks;
}

namespace {

const double kTickScale = 0.45;  // tick labels and legend entries

// Where values land on the canvas: the axes' ranges (y as drawn: log10 of it on a log scale) and
// the plot area.
struct Frame {
  double x0 = 0, x1 = 1, ly0 = 0, ly1 = 1;
  bool log_y = false;
  cv::Rect area;

  double ty(double v) const { return log_y ? std::log10(v) : v; }
  int px(double x) const { return area.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * area.width)); }
  int py(double y) const {
    return area.y + area.height - static_cast<int>(std::lround((ty(y) - ly0) / (ly1 - ly0) * area.height));
  }
};

bool drawable(const Chart& chart, double x, double y) {
  return std::isfinite(x) && std::isfinite(y) && (!chart.log_y || y > 0);
}

// The axes' ranges: the drawable points' extent (a unit square without any), the chart's fixed
// limits, and a margin around free y ranges (0 kept when near).
Frame frame_of(const Chart& chart, cv::Size size) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : chart.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!drawable(chart, s.x[i], s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = chart.log_y ? 0.1 : 0, y1 = 1;
  if (!std::isnan(chart.x_min)) x0 = chart.x_min;
  if (!std::isnan(chart.x_max)) x1 = chart.x_max;
  if (!std::isnan(chart.y_min)) y0 = chart.y_min;
  if (!std::isnan(chart.y_max)) y1 = chart.y_max;
  Frame f;
  f.log_y = chart.log_y;
  f.x0 = x0, f.x1 = x1 <= x0 ? x0 + 1 : x1;
  f.ly0 = f.ty(y0), f.ly1 = f.ty(y1);
  if (f.ly1 <= f.ly0) f.ly0 -= 0.5, f.ly1 += 0.5;
  if (!chart.log_y && std::isnan(chart.y_min) && std::isnan(chart.y_max)) {
    const double pad = 0.05 * (f.ly1 - f.ly0);
    f.ly0 = (f.ly0 >= 0 && f.ly0 - pad < 0) ? 0 : f.ly0 - pad;
    f.ly1 += pad;
  }
  // Room for the title, tick labels and axis labels.
  const int left = 70, right = 16, top = 36, bottom = 52;
  f.area = cv::Rect(left, top, size.width - left - right, size.height - top - bottom);
  return f;
}

// 1, 2 and 5 times the powers of ten within [ly0, ly1] (log10 of the values).
std::vector<double> log_ticks(double ly0, double ly1) {
  std::vector<double> ticks;
  for (int e = static_cast<int>(std::floor(ly0)); e <= static_cast<int>(std::ceil(ly1)); ++e)
    for (const double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, e);
      if (std::log10(v) >= ly0 - 1e-9 && std::log10(v) <= ly1 + 1e-9) ticks.push_back(v);
    }
  return ticks;
}

double tick_step(const std::vector<double>& ticks) { return ticks.size() > 1 ? ticks[1] - ticks[0] : 1; }

// Vertical grid lines with their values under the plot area, then horizontal ones with theirs
// to its left.
void draw_ticks(cv::Mat& canvas, const Frame& f) {
  const cv::Rect& area = f.area;
  const std::vector<double> x_ticks = nice_ticks(f.x0, f.x1);
  for (const double v : x_ticks) {
    const int x = f.px(v);
    cv::line(canvas, {x, area.y}, {x, area.y + area.height}, kGrid, 1);
    const std::string t = tick_text(v, tick_step(x_ticks), false);
    put_text(canvas, t, {x - text_size(t, kTickScale).width / 2, area.y + area.height + 18}, kTickScale, kInk);
  }
  const std::vector<double> y_ticks = f.log_y ? log_ticks(f.ly0, f.ly1) : nice_ticks(f.ly0, f.ly1);
  for (const double v : y_ticks) {
    const int y = f.py(v);
    cv::line(canvas, {area.x, y}, {area.x + area.width, y}, kGrid, 1);
    const std::string t = tick_text(v, tick_step(y_ticks), f.log_y);
    put_text(canvas, t, {area.x - 6 - text_size(t, kTickScale).width, y + 5}, kTickScale, kInk);
  }
}

cv::Scalar color_of(const Series& s, size_t position) {
  return s.color == cv::Scalar(0, 0, 0) ? palette(position) : s.color;
}

void segment(cv::Mat& canvas, cv::Point a, cv::Point b, const Series& s, const cv::Scalar& color) {
  if (s.dashed) dashed_line(canvas, a, b, color);
  else cv::line(canvas, a, b, color, 2, cv::LINE_AA);
}

// Each series' drawable points joined, clipped to the plot area; a lone point as a dot.
void draw_series(cv::Mat& canvas, const Chart& chart, const Frame& f) {
  cv::Mat plot = canvas(f.area);
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const cv::Scalar color = color_of(s, k);
    std::vector<cv::Point> points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (drawable(chart, s.x[i], s.y[i])) points.push_back({f.px(s.x[i]) - f.area.x, f.py(s.y[i]) - f.area.y});
    for (size_t i = 1; i < points.size(); ++i) segment(plot, points[i - 1], points[i], s, color);
    if (points.size() == 1) cv::circle(plot, points[0], 3, color, cv::FILLED, cv::LINE_AA);
  }
}

// The title over the chart, the x label under it, the y label turned along the left edge.
void draw_labels(cv::Mat& canvas, const Chart& chart, const cv::Rect& area) {
  const cv::Size size = canvas.size();
  put_text(canvas, chart.title, {(size.width - text_size(chart.title, 0.6, 2).width) / 2, 24}, 0.6, kInk, 2);
  put_text(canvas, chart.x_label, {area.x + (area.width - text_size(chart.x_label, 0.5).width) / 2, size.height - 10},
           0.5, kInk);
  if (chart.y_label.empty()) return;
  const cv::Size t = text_size(chart.y_label, 0.5);
  cv::Mat label(t.height + 8, t.width + 4, CV_8UC3, cv::Scalar(255, 255, 255));
  put_text(label, chart.y_label, {2, t.height + 2}, 0.5, kInk);
  cv::rotate(label, label, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int y = std::max(0, area.y + (area.height - label.rows) / 2);
  if (label.rows <= size.height - y) label.copyTo(canvas(cv::Rect(2, y, label.cols, label.rows)));
}

// A boxed legend inside the plot area (top right, or bottom left), left out when it does not fit.
void draw_legend(cv::Mat& canvas, const Chart& chart, const cv::Rect& area) {
  int legend_width = 0;
  for (const auto& s : chart.series) legend_width = std::max(legend_width, text_size(s.name, kTickScale).width);
  const int row = 16;
  const int legend_height = row * static_cast<int>(chart.series.size()) + 6;
  const cv::Rect legend(chart.legend_bottom_left ? area.x + 6 : area.x + area.width - legend_width - 40,
                        chart.legend_bottom_left ? area.y + area.height - legend_height - 6 : area.y + 6,
                        legend_width + 34, legend_height);
  if (chart.series.empty() || legend.x < area.x) return;
  cv::rectangle(canvas, legend, cv::Scalar(255, 255, 255), cv::FILLED);
  cv::rectangle(canvas, legend, kGrid, 1);
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const int y = legend.y + 4 + row * static_cast<int>(k) + row / 2;
    segment(canvas, {legend.x + 4, y}, {legend.x + 24, y}, s, color_of(s, k));
    put_text(canvas, s.name, {legend.x + 30, y + 5}, kTickScale, kInk);
  }
}

}  // namespace

cv::Mat draw_chart(const Chart& chart, cv::Size size) {
  cv::Mat canvas(size, CV_8UC3, cv::Scalar(255, 255, 255));
  const Frame frame = frame_of(chart, size);
  draw_ticks(canvas, frame);
  cv::rectangle(canvas, frame.area, kInk, 1);
  draw_series(canvas, chart, frame);
  draw_labels(canvas, chart, frame.area);
  draw_legend(canvas, chart, frame.area);
  return canvas;
}

cv::Mat contact_sheet(const std::vector<cv::Mat>& images, const std::vector<std::string>& captions, int columns,
                      int cell_width) {
  columns = std::max(1, std::min(columns, static_cast<int>(std::max<size_t>(1, images.size()))));
  const int rows = static_cast<int>((images.size() + columns - 1) / columns);
  int cell_height = 1;
  for (const auto& im : images)
    cell_height = std::max(cell_height, static_cast<int>(std::lround(double(im.rows) * cell_width / im.cols)));
  const int caption_h = 20, gap = 6;
  cv::Mat sheet(std::max(1, rows) * (cell_height + caption_h + gap) + gap, columns * (cell_width + gap) + gap, CV_8UC3,
                cv::Scalar(255, 255, 255));
  for (size_t i = 0; i < images.size(); ++i) {
    const int r = static_cast<int>(i) / columns, c = static_cast<int>(i) % columns;
    const cv::Mat& im = images[i];
    const double f = std::min(double(cell_width) / im.cols, double(cell_height) / im.rows);
    cv::Mat thumb;
    cv::resize(im, thumb, cv::Size(std::max(1, int(std::lround(im.cols * f))), std::max(1, int(std::lround(im.rows * f)))),
               0, 0, cv::INTER_AREA);
    const int x = gap + c * (cell_width + gap) + (cell_width - thumb.cols) / 2;
    const int y = gap + r * (cell_height + caption_h + gap);
    thumb.copyTo(sheet(cv::Rect(x, y, thumb.cols, thumb.rows)));
    if (i < captions.size()) {
      std::string text = captions[i];
      while (text.size() > 4 && text_size(text, 0.4).width > cell_width) text = "..." + text.substr(4);
      put_text(sheet, text, {gap + c * (cell_width + gap), y + cell_height + 15}, 0.4, kInk);
    }
  }
  return sheet;
}

cv::Mat side_by_side(const std::vector<cv::Mat>& images, int gap) {
  int width = gap * std::max(0, static_cast<int>(images.size()) - 1), height = 1;
  for (const auto& im : images) {
    width += im.cols;
    height = std::max(height, im.rows);
  }
  cv::Mat canvas(height, std::max(1, width), CV_8UC3, cv::Scalar(255, 255, 255));
  int x = 0;
  for (const auto& im : images) {
    im.copyTo(canvas(cv::Rect(x, 0, im.cols, im.rows)));
    x += im.cols + gap;
  }
  return canvas;
}

}  // namespace mrcnn::viz
