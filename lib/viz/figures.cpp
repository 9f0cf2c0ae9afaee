#include "viz/figures.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "eval/rle.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "viz/plot.h"

namespace mrcnn::viz {
namespace {

const cv::Scalar kMatched(40, 170, 60), kFalsePositive(220, 30, 30), kMissed(255, 140, 0);

eval::Instance instance_of(const eval::CocoObject& object, const eval::CocoGroundTruth& gt, bool truth) {
  eval::Instance inst;
  if (object.bbox) {
    const auto& b = *object.bbox;
    inst.box = {static_cast<float>(b[0]), static_cast<float>(b[1]), static_cast<float>(b[0] + b[2]),
                static_cast<float>(b[1] + b[3])};
  }
  inst.score = truth ? 1.0f : static_cast<float>(object.score);
  inst.label = object.category_id;
  if (object.segmentation.kind != eval::Segmentation::Kind::None) {
    try {
      inst.mask = eval::object_mask(object, gt);
    } catch (const Error&) {
      // No usable mask (e.g. no image size): drawn as a box only.
    }
  }
  if (!object.bbox && inst.mask.area() > 0) {
    const auto b = inst.mask.bbox();
    inst.box = {static_cast<float>(b[0]), static_cast<float>(b[1]), static_cast<float>(b[0] + b[2]),
                static_cast<float>(b[1] + b[3])};
  }
  return inst;
}

void outline(cv::Mat& canvas, const eval::Instance& inst, const cv::Scalar& color, int thickness,
             const std::string& tag = "") {
  const cv::Point p1(static_cast<int>(std::lround(inst.box[0])), static_cast<int>(std::lround(inst.box[1])));
  const cv::Point p2(static_cast<int>(std::lround(inst.box[2])), static_cast<int>(std::lround(inst.box[3])));
  cv::rectangle(canvas, p1, p2, color, thickness + 1, cv::LINE_AA);
  if (tag.empty()) return;
  int baseline = 0;
  const cv::Size text = cv::getTextSize(tag, cv::FONT_HERSHEY_SIMPLEX, 0.4, 1, &baseline);
  const int x = std::clamp(p1.x, 0, std::max(0, canvas.cols - text.width - 4));
  const int y = std::clamp(p2.y, 0, std::max(0, canvas.rows - text.height - baseline - 4));
  cv::rectangle(canvas, cv::Rect(x, y, text.width + 4, text.height + baseline + 4), color, cv::FILLED);
  cv::putText(canvas, tag, {x + 2, y + text.height + 2}, cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(255, 255, 255), 1,
              cv::LINE_AA);
}

// The caption in a strip above the image; on two lines ("title:" / "counts") when one is too
// wide for a small image.
cv::Mat caption_above(const cv::Mat& image, const std::string& caption) {
  int baseline = 0;
  const auto width_at = [&](const std::string& text, double s) {
    return cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, s, 1, &baseline).width;
  };
  const bool wrap = width_at(caption, 0.45) > image.cols - 8 && caption.find(": ") != std::string::npos;
  // Small images: a smaller font, so that the longest line fits.
  const std::string longest = wrap ? caption.substr(caption.find(": ") + 2) : caption;
  const double scale = std::max(0.25, std::min(0.45, 0.45 * (image.cols - 8) / std::max(1, width_at(longest, 0.45))));
  const int strip = wrap ? 40 : 24;
  cv::Mat out(image.rows + strip, image.cols, CV_8UC3, cv::Scalar(255, 255, 255));
  image.copyTo(out(cv::Rect(0, strip, image.cols, image.rows)));
  const cv::Scalar ink(40, 40, 40);
  if (wrap) {
    const size_t split = caption.find(": ");
    cv::putText(out, caption.substr(0, split + 1), {4, 15}, cv::FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv::LINE_AA);
    cv::putText(out, caption.substr(split + 2), {4, 33}, cv::FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv::LINE_AA);
  } else {
    cv::putText(out, caption, {4, 17}, cv::FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv::LINE_AA);
  }
  return out;
}

// The steps of compare.

// What became of a detection in the greedy matching.
enum class Outcome { FalsePositive, Matched, OnCrowd };

struct Matching {
  std::vector<int> truth_match;   // per ground truth object: the detection that matched it, or -1
  std::vector<Outcome> outcomes;  // per detection
};

// Detections at or above the threshold, of the chosen classes, best first (ties in file order).
std::vector<const eval::CocoObject*> detections_to_match(const std::vector<const eval::CocoObject*>& detections,
                                                         const OverlayStyle& style) {
  std::vector<const eval::CocoObject*> dts;
  for (const auto* d : detections)
    if (d->score >= style.score_threshold && (style.classes.empty() || style.classes.count(d->category_id)))
      dts.push_back(d);
  std::stable_sort(dts.begin(), dts.end(), [](auto* a, auto* b) { return a->score > b->score; });
  return dts;
}

// IoU of each (detection, ground truth) pair, detection-major: with masks when every instance has
// one at the image's size, else with boxes; crowd regions the COCO way (eval's iou matrices).
std::vector<double> pair_ious(const std::vector<eval::Instance>& dt_inst, const std::vector<eval::Instance>& gt_inst,
                              const std::vector<const eval::CocoObject*>& truth, int image_rows) {
  bool masks = true;
  for (const auto& i : gt_inst) masks = masks && i.mask.height == image_rows && i.mask.area() > 0;
  for (const auto& i : dt_inst) masks = masks && i.mask.height == image_rows;
  std::vector<uint8_t> crowd;
  for (const auto* t : truth) crowd.push_back(t->iscrowd ? 1 : 0);
  if (masks) {
    std::vector<const eval::Rle*> d, g;
    for (const auto& i : dt_inst) d.push_back(&i.mask);
    for (const auto& i : gt_inst) g.push_back(&i.mask);
    return eval::rle_iou_matrix(d, g, crowd);
  }
  const auto xywh = [](const eval::Instance& i) {
    return eval::Box{i.box[0], i.box[1], i.box[2] - i.box[0], i.box[3] - i.box[1]};
  };
  std::vector<eval::Box> d, g;
  for (const auto& i : dt_inst) d.push_back(xywh(i));
  for (const auto& i : gt_inst) g.push_back(xywh(i));
  return eval::box_iou_matrix(d, g, crowd);
}

// Each detection, best first, takes the unmatched ground truth object of its class it overlaps
// most (IoU >= threshold); one that takes none but overlaps a crowd region of its class that much
// is no false positive.
Matching match_greedily(const std::vector<const eval::CocoObject*>& truth,
                        const std::vector<const eval::CocoObject*>& dts, const std::vector<double>& iou,
                        double iou_threshold) {
  Matching m{std::vector<int>(truth.size(), -1), std::vector<Outcome>(dts.size(), Outcome::FalsePositive)};
  for (size_t k = 0; k < dts.size(); ++k) {
    double best = iou_threshold;
    int chosen = -1;
    for (size_t g = 0; g < truth.size(); ++g) {
      if (truth[g]->iscrowd || m.truth_match[g] >= 0 || truth[g]->category_id != dts[k]->category_id) continue;
      const double v = iou[k * truth.size() + g];
      if (v >= best) best = v, chosen = static_cast<int>(g);
    }
    if (chosen >= 0) {
      m.truth_match[chosen] = static_cast<int>(k);
      m.outcomes[k] = Outcome::Matched;
      continue;
    }
    for (size_t g = 0; g < truth.size(); ++g)
      if (truth[g]->iscrowd && truth[g]->category_id == dts[k]->category_id && iou[k * truth.size() + g] >= iou_threshold)
        m.outcomes[k] = Outcome::OnCrowd;
  }
  return m;
}

// Matched ground truth outlined green, missed orange (crowd regions neither), counted in `out`.
void mark_truth(cv::Mat& canvas, const std::vector<const eval::CocoObject*>& truth,
                const std::vector<eval::Instance>& gt_inst, const Matching& m, int thickness, Comparison& out) {
  for (size_t g = 0; g < truth.size(); ++g) {
    if (truth[g]->iscrowd) continue;
    if (m.truth_match[g] >= 0) {
      ++out.matched;
      outline(canvas, gt_inst[g], kMatched, thickness);
    } else {
      ++out.missed;
      outline(canvas, gt_inst[g], kMissed, thickness, "missed");
    }
  }
}

// Matched detections outlined green, false positives red (counted in `out`); those on a crowd
// region left as drawn.
void mark_detections(cv::Mat& canvas, const std::vector<eval::Instance>& dt_inst, const Matching& m, int thickness,
                     Comparison& out) {
  for (size_t k = 0; k < dt_inst.size(); ++k) {
    if (m.outcomes[k] == Outcome::Matched) outline(canvas, dt_inst[k], kMatched, thickness);
    if (m.outcomes[k] == Outcome::FalsePositive) {
      ++out.false_positives;
      outline(canvas, dt_inst[k], kFalsePositive, thickness, "false positive");
    }
  }
}

// The steps of training_curves.

// The curves of a metrics.jsonl by kind.
struct MetricsSeries {
  std::map<std::string, Series> losses, val;  // by key ("loss_mask"; "bbox AP")
  Series lr{"lr", {}, {}};
  int64_t missing_values = 0;  // validation scores that are null or -1
};

// A validation record's AP and AP50 (bbox, segm) at `step`.
void add_validation(const nlohmann::json& val, double step, const std::string& path, int64_t line_number,
                    MetricsSeries& m) {
  for (const char* type : {"bbox", "segm"})
    for (const char* metric : {"AP", "AP50"})
      if (val.contains(type) && val[type].contains(metric)) {
        // A validation without ground truth scores -1 (pycocotools), and mrcnn-train writes a
        // NaN as null: no point to draw.
        const nlohmann::json& value = val[type][metric];
        if (!value.is_number() || value.get<double>() < 0) {
          if (m.missing_values++ == 0)
            log::warn("{}:{}: val.{}.{} is {} (a validation without ground truth?): left out of the curves", path,
                      line_number, type, metric,
                      value.is_number() ? std::to_string(value.get<double>()) : value.type_name());
          continue;
        }
        Series& s = m.val[std::string(type) + " " + metric];
        s.name = std::string(type) + " " + metric;
        s.dashed = std::string(metric) == "AP50";
        s.x.push_back(step);
        s.y.push_back(value.get<double>());
      }
}

// A training record's losses ("loss", "loss_*") and learning rate at `step`.
void add_training(const nlohmann::json& record, double step, MetricsSeries& m) {
  for (const auto& [key, value] : record.items()) {
    if (!value.is_number()) continue;
    if (key == "loss" || key.rfind("loss_", 0) == 0) {
      Series& s = m.losses[key];
      s.name = key;
      s.x.push_back(step);
      s.y.push_back(value.get<double>());
    } else if (key == "lr") {
      m.lr.x.push_back(step);
      m.lr.y.push_back(value.get<double>());
    }
  }
}

// Every record (a JSON object with a numeric "step") of the file; other lines are counted in
// `out` as skipped, the first one that is no JSON with a warning.
MetricsSeries read_metrics(const std::string& path, CurvesFigure& out) {
  std::istringstream in(read_text_file(path));
  MetricsSeries m;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = parse_json_data(line, path, static_cast<size_t>(line_number));  // the limits of every JSON input
    } catch (const Error& e) {
      if (out.skipped_lines++ == 0) log::warn("{} (not a JSON record, skipped; a run killed mid-write?)", e.what());
      continue;
    }
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number()) {
      ++out.skipped_lines;
      continue;
    }
    const double step = record["step"].get<double>();
    ++out.records;
    if (record.contains("val") && record["val"].is_object()) add_validation(record["val"], step, path, line_number, m);
    else add_training(record, step, m);
  }
  return m;
}

// Losses (log scale, the total first) and learning rate on top; validation AP under them.
cv::Mat curves_image(const MetricsSeries& m) {
  Chart loss_chart{"Training losses", "step", "loss (log scale)", {}, true};
  if (m.losses.count("loss")) loss_chart.series.push_back(m.losses.at("loss"));
  for (const auto& [key, s] : m.losses)
    if (key != "loss") loss_chart.series.push_back(s);
  Chart lr_chart{"Learning rate", "step", "lr", {m.lr}};
  lr_chart.y_min = 0;
  Chart val_chart{"Validation mAP (COCO)", "step", "AP", {}};
  val_chart.y_min = 0;
  val_chart.y_max = 1;
  const cv::Scalar bbox_color(31, 119, 180), segm_color(214, 39, 40);
  for (const auto& [key, s] : m.val) {
    val_chart.series.push_back(s);
    val_chart.series.back().color = key.rfind("bbox", 0) == 0 ? bbox_color : segm_color;
  }
  if (m.val.empty()) val_chart.title = "Validation mAP (no validation records)";
  const cv::Size panel(560, 380);
  const cv::Mat top = side_by_side({draw_chart(loss_chart, panel), draw_chart(lr_chart, panel)}, 0);
  cv::Mat bottom = side_by_side({draw_chart(val_chart, panel), cv::Mat(panel, CV_8UC3, cv::Scalar(255, 255, 255))}, 0);
  cv::Mat image;
  cv::vconcat(top, bottom, image);
  return image;
}

}  // namespace

std::vector<eval::Instance> instances_of(const std::vector<const eval::CocoObject*>& objects,
                                          const eval::CocoGroundTruth& gt, bool ground_truth) {
  std::vector<eval::Instance> out;
  for (const auto* o : objects) out.push_back(instance_of(*o, gt, ground_truth));
  return out;
}

ResultsByImage read_results(const std::string& path) {
  const nlohmann::json doc = read_json_data_file(path);
  if (!doc.is_array()) throw Error(path + ": expected a COCO results array of detection records");
  ResultsByImage out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& r = doc[i];
    const std::string where = path + ": record " + std::to_string(i);
    if (!r.is_object() || !r.contains("image_id") || !r.contains("category_id") || !r.contains("bbox") ||
        !r["bbox"].is_array() || r["bbox"].size() != 4)
      throw Error(where + ": expected image_id, category_id and bbox [x, y, w, h]");
    eval::Instance inst;
    const auto& b = r["bbox"];
    inst.box = {b[0].get<float>(), b[1].get<float>(), b[0].get<float>() + b[2].get<float>(),
                b[1].get<float>() + b[3].get<float>()};
    inst.score = r.value("score", 1.0f);
    inst.label = r["category_id"].get<int64_t>();
    if (r.contains("segmentation") && r["segmentation"].is_object() && r["segmentation"].contains("counts") &&
        r["segmentation"]["counts"].is_string()) {
      const auto& seg = r["segmentation"];
      inst.mask = eval::rle_from_string(seg["counts"].get<std::string>(), seg["size"][0].get<int64_t>(),
                                        seg["size"][1].get<int64_t>());
    }
    const int64_t id = r["image_id"].get<int64_t>();
    out.by_id[id].push_back(std::move(inst));
    if (r.contains("file_name") && r["file_name"].is_string()) {
      const std::string file = r["file_name"].get<std::string>();
      out.id_of_file[file] = id;
      out.id_of_file[std::filesystem::path(file).filename().string()] = id;
    }
    ++out.records;
  }
  return out;
}

cv::Mat draw_ground_truth(const cv::Mat& rgb, const std::vector<const eval::CocoObject*>& objects,
                          const eval::CocoGroundTruth& gt, const data::LabelMap& labels, OverlayStyle style) {
  style.show_scores = false;
  style.score_threshold = 0;
  std::vector<eval::Instance> regular;
  std::vector<eval::Instance> crowd;
  for (const auto* o : objects) (o->iscrowd ? crowd : regular).push_back(instance_of(*o, gt, true));
  cv::Mat canvas = draw_instances(rgb, regular, labels, style);
  // Crowd regions: diagonal hatching inside the mask (or box), a thin box and a "crowd" tag.
  for (const auto& inst : crowd) {
    cv::Mat region = cv::Mat::zeros(canvas.size(), CV_8UC1);
    if (inst.mask.height == canvas.rows && inst.mask.width == canvas.cols && inst.mask.area() > 0) {
      const std::vector<uint8_t> bits = eval::decode_rle(inst.mask);
      cv::Mat(canvas.rows, canvas.cols, CV_8UC1, const_cast<uint8_t*>(bits.data())).copyTo(region);
    } else {
      cv::rectangle(region, {int(inst.box[0]), int(inst.box[1])}, {int(inst.box[2]), int(inst.box[3])}, 1,
                    cv::FILLED);
    }
    cv::Mat hatch = canvas.clone();
    for (int d = -canvas.rows; d < canvas.cols; d += 8)
      cv::line(hatch, {d, canvas.rows}, {d + canvas.rows, 0}, class_color(inst.label), 1, cv::LINE_AA);
    hatch.copyTo(canvas, region);
    outline(canvas, inst, class_color(inst.label) * 0.6, 0, labels.name(inst.label) + " (crowd)");
  }
  return canvas;
}

Comparison compare(const cv::Mat& rgb, const std::vector<const eval::CocoObject*>& truth,
                   const std::vector<const eval::CocoObject*>& detections, const eval::CocoGroundTruth& gt,
                   const data::LabelMap& labels, const OverlayStyle& style, double iou_threshold) {
  const std::vector<const eval::CocoObject*> dts = detections_to_match(detections, style);
  const std::vector<eval::Instance> gt_inst = instances_of(truth, gt, true);
  const std::vector<eval::Instance> dt_inst = instances_of(dts, gt, false);
  const Matching m = match_greedily(truth, dts, pair_ious(dt_inst, gt_inst, truth, rgb.rows), iou_threshold);
  Comparison out;
  cv::Mat left = draw_ground_truth(rgb, truth, gt, labels, style);
  mark_truth(left, truth, gt_inst, m, style.line_thickness, out);
  OverlayStyle dt_style = style;
  dt_style.score_threshold = 0;
  cv::Mat right = draw_instances(rgb, dt_inst, labels, dt_style);
  mark_detections(right, dt_inst, m, style.line_thickness, out);
  out.image = side_by_side({caption_above(left, "ground truth: " + std::to_string(out.matched) + " found, " +
                                                    std::to_string(out.missed) + " missed"),
                            caption_above(right, "predictions: " + std::to_string(out.matched) + " matched, " +
                                                     std::to_string(out.false_positives) +
                                                     (out.false_positives == 1 ? " false positive" : " false positives"))});
  return out;
}

CurvesFigure training_curves(const std::string& metrics_path) {
  CurvesFigure out;
  const MetricsSeries m = read_metrics(metrics_path, out);
  if (m.missing_values > 1)
    log::warn("{}: {} validation values in all are null or -1 (not drawn)", metrics_path, m.missing_values);
  if (out.records == 0)
    throw Error(metrics_path + ": no metrics records (expected mrcnn-train's metrics.jsonl: one JSON object with "
                "\"step\" per line)");
  out.image = curves_image(m);
  return out;
}

cv::Mat precision_recall_curves(const eval::EvalResult& result, const eval::CocoGroundTruth& gt) {
  const auto& p = result.params;
  const size_t area_all = 0, max_dets = p.max_dets.size() - 1;
  std::vector<cv::Mat> panels;
  for (const double threshold : {0.5, 0.75}) {
    size_t t = 0;
    while (t + 1 < p.iou_thresholds.size() && std::abs(p.iou_thresholds[t] - threshold) > 1e-9) ++t;
    char title[96];
    std::snprintf(title, sizeof title, "%s precision-recall at IoU %.2f", iou_type_name(result.type).c_str(),
                  threshold);
    Chart chart{title, "recall", "precision", {}};
    chart.x_min = 0, chart.x_max = 1, chart.y_min = 0, chart.y_max = 1.02;
    chart.legend_bottom_left = true;
    Series overall{"all classes", p.recall_thresholds, std::vector<double>(p.recall_thresholds.size(), 0.0),
                   cv::Scalar(20, 20, 20)};
    std::vector<int> counted(p.recall_thresholds.size(), 0);
    std::vector<Series> per_class;
    for (size_t k = 0; k < result.category_ids.size(); ++k) {
      Series s{gt.category_name(result.category_ids[k]), {}, {}};
      for (size_t r = 0; r < p.recall_thresholds.size(); ++r) {
        const double v = result.precision_at(t, r, k, area_all, max_dets);
        if (v < 0) continue;  // no ground truth of this class
        s.x.push_back(p.recall_thresholds[r]);
        s.y.push_back(v);
        overall.y[r] += v;
        ++counted[r];
      }
      if (!s.x.empty()) per_class.push_back(std::move(s));
    }
    for (size_t r = 0; r < overall.y.size(); ++r) overall.y[r] = counted[r] ? overall.y[r] / counted[r] : NAN;
    chart.series.push_back(overall);
    constexpr size_t kMostClasses = 9;  // a readable legend; the overall curve covers the rest
    for (size_t k = 0; k < per_class.size() && k < kMostClasses; ++k) chart.series.push_back(per_class[k]);
    panels.push_back(draw_chart(chart, {560, 420}));
  }
  return side_by_side(panels, 0);
}

}  // namespace mrcnn::viz
