#include "viz/anchor_figure.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "io/image_file.h"
#include "io/json_file.h"
#include "viz/plot.h"

namespace mrcnn::viz {
namespace {

using nlohmann::json;

constexpr size_t kMaxBins = 4096, kMaxSizes = 1024;
constexpr double kMaxPixels = 1e7, kMaxCount = 1e15;

// Reads fields of the report, each checked; an error names the file, the field and what it must be.
struct ReportReader {
  std::string file;

  [[noreturn]] void fail(const std::string& field, const std::string& expected) const {
    throw Error(file + ": " + field + ": expected " + expected + " (a report of mrcnn-config anchors --json)");
  }
  const json& member(const json& object, const std::string& key, const std::string& field) const {
    if (!object.is_object() || !object.contains(key)) fail(field, "a field '" + key + "'");
    return object.at(key);
  }
  double number(const json& v, const std::string& field, double lo, double hi) const {
    if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi))
      fail(field, "a number in [" + json(lo).dump() + ", " + json(hi).dump() + "]");
    return v.get<double>();
  }
  int64_t count(const json& v, const std::string& field) const {
    if (!v.is_number_integer() || v.get<double>() < 0 || v.get<double>() > kMaxCount) fail(field, "a count");
    return v.get<int64_t>();
  }
  const json& array(const json& v, const std::string& field, size_t min, size_t max) const {
    if (!v.is_array() || v.size() < min || v.size() > max)
      fail(field, "an array of " + std::to_string(min) + " to " + std::to_string(max) + " items");
    return v;
  }
  std::vector<int64_t> counts(const json& v, const std::string& field, size_t size) const {
    std::vector<int64_t> out;
    for (const json& item : array(v, field, size, size)) out.push_back(count(item, field));
    return out;
  }
};

std::vector<double> read_edges(const ReportReader& r, const json& histogram) {
  std::vector<double> edges;
  for (const json& e : r.array(r.member(histogram, "edges", "histogram"), "histogram.edges", 2, kMaxBins + 1)) {
    edges.push_back(r.number(e, "histogram.edges", 1e-6, kMaxPixels));
    if (edges.size() > 1 && !(edges.back() > edges[edges.size() - 2])) r.fail("histogram.edges", "increasing numbers");
  }
  return edges;
}

std::vector<double> read_sizes(const ReportReader& r, const json& anchors, const std::string& name) {
  std::vector<double> sizes;
  const std::string field = name + ".sizes";
  for (const json& level : r.array(r.member(anchors, "sizes", name), field, 1, 64))
    for (const json& s : r.array(level, field, 1, kMaxSizes)) sizes.push_back(r.number(s, field, 1, kMaxPixels));
  return sizes;
}

// The sqrt(area) buckets of both tables, side by side.
std::vector<AnchorFigureData::Share> read_shares(const ReportReader& r, const json& current, const json& proposed) {
  const json& now = r.array(r.member(current, "buckets", "current"), "current.buckets", 0, 64);
  const json& then = r.array(r.member(proposed, "buckets", "proposed"), "proposed.buckets", now.size(), now.size());
  std::vector<AnchorFigureData::Share> shares;
  for (size_t i = 0; i < now.size(); ++i) {
    const std::string field = "current.buckets[" + std::to_string(i) + "]";
    if (r.member(now[i], "measure", field) != "sqrt_area") continue;
    const json& hi = r.member(now[i], "hi", field);
    AnchorFigureData::Share s;
    s.lo = r.number(r.member(now[i], "lo", field), field + ".lo", 0, kMaxPixels);
    s.hi = hi.is_null() ? INFINITY : r.number(hi, field + ".hi", s.lo, kMaxPixels);
    s.boxes = r.count(r.member(now[i], "boxes", field), field + ".boxes");
    s.positive_current = r.count(r.member(now[i], "positive", field), field + ".positive");
    s.positive_proposed = r.count(r.member(then[i], "positive", "proposed.buckets"), "proposed.buckets.positive");
    if (s.positive_current > s.boxes || s.positive_proposed > s.boxes) r.fail(field, "positives <= boxes");
    if (s.lo > 0 || !std::isinf(s.hi)) shares.push_back(s);  // "all" is the whole figure
  }
  return shares;
}

}  // namespace

AnchorFigureData read_anchor_report(const std::string& path) {
  const json doc = read_json_data_file(path);
  const ReportReader r{path};
  if (!doc.is_object()) r.fail("the document", "a JSON object");
  AnchorFigureData d;
  const json& histogram = r.member(doc, "histogram", "the document");
  d.edges = read_edges(r, histogram);
  d.boxes = r.counts(r.member(histogram, "boxes", "histogram"), "histogram.boxes", d.edges.size() - 1);
  d.positive_current =
      r.counts(r.member(histogram, "positive_current", "histogram"), "histogram.positive_current", d.edges.size() - 1);
  d.positive_proposed = r.counts(r.member(histogram, "positive_proposed", "histogram"), "histogram.positive_proposed",
                                 d.edges.size() - 1);
  const json& current = r.member(doc, "current", "the document");
  const json& proposed = r.member(doc, "proposed", "the document");
  d.current_sizes = read_sizes(r, current, "current");
  d.proposed_sizes = read_sizes(r, proposed, "proposed");
  d.buckets = read_shares(r, current, proposed);
  d.fg_iou_thresh = r.number(r.member(doc, "fg_iou_thresh", "the document"), "fg_iou_thresh", 0, 1);
  const json& changed = r.member(proposed, "changed", "proposed");
  if (!changed.is_boolean()) r.fail("proposed.changed", "true or false");
  d.changed = changed.get<bool>();
  return d;
}

namespace {

const cv::Scalar kInk(40, 40, 40), kGrid(225, 225, 225), kBoxes(200, 200, 200);
const cv::Scalar kCurrent(255, 127, 14), kProposed(31, 119, 180);  // RGB
const int kFont = cv::FONT_HERSHEY_SIMPLEX;

// Where sizes and counts land: x on a log2 scale of the edges' range, y linear from 0.
struct HistogramFrame {
  double lx0, lx1, y1;
  cv::Rect area;
  int px(double size) const {
    const double t = (std::log2(size) - lx0) / (lx1 - lx0);
    return area.x + static_cast<int>(std::lround(std::clamp(t, 0.0, 1.0) * area.width));
  }
  int py(double count) const { return area.y + area.height - static_cast<int>(std::lround(count / y1 * area.height)); }
};

void text(cv::Mat& canvas, const std::string& t, cv::Point at, double scale, const cv::Scalar& color,
          bool centred = false) {
  int baseline = 0;
  const int width = cv::getTextSize(t, kFont, scale, 1, &baseline).width;
  cv::putText(canvas, t, {centred ? at.x - width / 2 : at.x, at.y}, kFont, scale, color, 1, cv::LINE_AA);
}

// Axes: powers of two along x, round counts along y, with grid lines and labels.
void draw_axes(cv::Mat& canvas, const HistogramFrame& f) {
  for (int e = static_cast<int>(std::ceil(f.lx0)); e <= static_cast<int>(std::floor(f.lx1)); ++e) {
    const int x = f.px(std::exp2(e));
    cv::line(canvas, {x, f.area.y}, {x, f.area.y + f.area.height}, kGrid, 1);
    char label[32];
    std::snprintf(label, sizeof label, "%g", std::exp2(e));
    text(canvas, label, {x, f.area.y + f.area.height + 18}, 0.45, kInk, true);
  }
  for (const double v : nice_ticks(0, f.y1)) {
    const int y = f.py(v);
    cv::line(canvas, {f.area.x, y}, {f.area.x + f.area.width, y}, kGrid, 1);
    char label[32];
    std::snprintf(label, sizeof label, "%g", v);
    text(canvas, label, {f.area.x - 8 - 8 * static_cast<int>(std::string(label).size()), y + 5}, 0.45, kInk);
  }
  cv::rectangle(canvas, f.area, kInk, 1);
}

// Each bin: all its boxes in grey, the left half filled up to the boxes the current anchors make
// positive, the right half up to the proposed anchors' positives.
void draw_bins(cv::Mat& canvas, const AnchorFigureData& d, const HistogramFrame& f) {
  const int base = f.py(0);
  for (size_t i = 0; i < d.boxes.size(); ++i) {
    const int x0 = f.px(d.edges[i]) + 1, x1 = std::max(x0 + 1, f.px(d.edges[i + 1]) - 1), mid = (x0 + x1) / 2;
    cv::rectangle(canvas, cv::Point(x0, f.py(double(d.boxes[i]))), cv::Point(x1, base), kBoxes, cv::FILLED);
    if (d.positive_current[i] > 0)
      cv::rectangle(canvas, cv::Point(x0, f.py(double(d.positive_current[i]))), cv::Point(mid, base), kCurrent,
                    cv::FILLED);
    if (d.positive_proposed[i] > 0)
      cv::rectangle(canvas, cv::Point(mid, f.py(double(d.positive_proposed[i]))), cv::Point(x1, base), kProposed,
                    cv::FILLED);
  }
}

// Anchor sizes as vertical lines: the proposed ones solid, the current ones dashed over them (a
// size in both shows both colours).
void draw_anchor_sizes(cv::Mat& canvas, const AnchorFigureData& d, const HistogramFrame& f) {
  const int top = f.area.y, bottom = f.area.y + f.area.height;
  for (const double s : d.proposed_sizes)
    if (std::log2(s) >= f.lx0 && std::log2(s) <= f.lx1)
      cv::line(canvas, {f.px(s), top}, {f.px(s), bottom}, kProposed, 2);
  for (const double s : d.current_sizes) {
    if (std::log2(s) < f.lx0 || std::log2(s) > f.lx1) continue;
    for (int y = top; y < bottom; y += 12)
      cv::line(canvas, {f.px(s), y}, {f.px(s), std::min(bottom, y + 7)}, kCurrent, 2);
  }
}

std::string share(int64_t part, int64_t whole) {
  char t[16];
  std::snprintf(t, sizeof t, "%.0f%%", 100.0 * double(part) / double(std::max<int64_t>(whole, 1)));
  return t;
}

// Above the plot: each size bucket's positive share, current -> proposed, between its edges.
void draw_bucket_shares(cv::Mat& canvas, const AnchorFigureData& d, const HistogramFrame& f) {
  for (const auto& b : d.buckets) {
    if (b.boxes == 0) continue;
    const double lo = std::max(std::log2(std::max(b.lo, 1e-6)), f.lx0);
    const double hi = std::min(std::isinf(b.hi) ? f.lx1 : std::log2(b.hi), f.lx1);
    if (hi <= lo) continue;
    const int x0 = f.px(std::exp2(lo)), x1 = f.px(std::exp2(hi)), y = f.area.y - 6;
    cv::line(canvas, {x0, y - 22}, {x0, f.area.y}, kInk, 1);
    text(canvas, share(b.positive_current, b.boxes), {(x0 + x1) / 2, y - 12}, 0.4, kCurrent, true);
    text(canvas, share(b.positive_proposed, b.boxes), {(x0 + x1) / 2, y}, 0.4, kProposed, true);
  }
}

void draw_legend(cv::Mat& canvas, const AnchorFigureData& d, cv::Point at) {
  char fg[96];
  std::snprintf(fg, sizeof fg, "positive (best IoU >= %g) with", d.fg_iou_thresh);
  text(canvas, "boxes", {at.x + 18, at.y}, 0.45, kInk);
  cv::rectangle(canvas, cv::Rect(at.x, at.y - 10, 12, 10), kBoxes, cv::FILLED);
  text(canvas, std::string(fg) + " current anchors (dashed: their sizes)", {at.x + 18, at.y + 18}, 0.45, kInk);
  cv::rectangle(canvas, cv::Rect(at.x, at.y + 8, 12, 10), kCurrent, cv::FILLED);
  text(canvas, std::string(fg) + (d.changed ? " proposed anchors (lines: their sizes)" : " proposed = current"),
       {at.x + 18, at.y + 36}, 0.45, kInk);
  cv::rectangle(canvas, cv::Rect(at.x, at.y + 26, 12, 10), kProposed, cv::FILLED);
}

}  // namespace

cv::Mat anchor_figure(const AnchorFigureData& d, cv::Size size) {
  cv::Mat canvas(size, CV_8UC3, cv::Scalar(255, 255, 255));
  const int64_t most = std::max<int64_t>(1, *std::max_element(d.boxes.begin(), d.boxes.end()));
  // The x range shows the boxes and every anchor size, so that anchors far from the boxes show.
  double lo = d.edges.front(), hi = d.edges.back();
  for (const auto* sizes : {&d.current_sizes, &d.proposed_sizes})
    for (const double s : *sizes) lo = std::min(lo, s), hi = std::max(hi, s);
  HistogramFrame f{std::log2(lo) - 0.1, std::log2(hi) + 0.1, double(most) * 1.08,
                   cv::Rect(70, 96, size.width - 90, size.height - 96 - 100)};
  text(canvas, "training boxes after resize (count per size bin) vs anchor sizes", {size.width / 2, 24}, 0.6, kInk,
       true);
  text(canvas, "positive share per size bucket (sqrt(area) px): current (top), proposed (below)", {70, 48}, 0.45, kInk);
  draw_axes(canvas, f);
  draw_bins(canvas, d, f);
  draw_anchor_sizes(canvas, d, f);
  draw_bucket_shares(canvas, d, f);
  text(canvas, "box size: sqrt(area) in pixels after the model's resize (log scale)",
       {f.area.x + f.area.width / 2, f.area.y + f.area.height + 40}, 0.5, kInk, true);
  draw_legend(canvas, d, {f.area.x, size.height - 42});
  return canvas;
}

void write_anchor_figure(const std::string& report_path, const std::string& output) {
  check_output_file(output);
  write_image_rgb(output, anchor_figure(read_anchor_report(report_path)));
  log::info("anchor figure of {} written to {}", report_path, output);
}

}  // namespace mrcnn::viz
