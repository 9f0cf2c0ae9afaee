#include "anchors/box_survey.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/log.h"
#include "data/datasets.h"

namespace mrcnn::anchors {

BoxSet read_training_boxes(const Json& resolved) {
  const data::DatasetSpec spec = data::DatasetSpec::from_config(resolved, "data.train");
  log::info("reading the training set {} ({})", spec.annotations, spec.format);
  data::ReadReport report;
  const std::vector<data::Sample> samples = data::read_dataset(spec, report);
  log::info("{}", report.summary(spec.annotations));
  const Json& model = resolved.at("model");
  BoxSet set;
  set.source = spec.format + " " + spec.annotations;
  set.min_sizes = model.at("min_size").get<std::vector<int64_t>>();
  set.max_size = model.at("max_size").get<int64_t>();
  const int64_t divisible = model.at("size_divisible").get<int64_t>();
  for (const data::Sample& s : samples) {
    set.images += 1;
    set.annotated_boxes += static_cast<int64_t>(s.boxes.size());
    const Size2 original{s.height, s.width};
    for (const int64_t min_size : set.min_sizes) {
      Size2 resized;
      try {
        resized = resized_size(original, min_size, set.max_size);
      } catch (const Error& e) {
        throw Error(s.image_path + ": " + e.what());
      }
      const Size2 padded = padded_size(resized, divisible);
      for (const auto& b : s.boxes) set.boxes.push_back({resize_box(b, original, resized), padded});
    }
  }
  return set;
}

std::vector<float> level_best_ious(const std::vector<ResizedBox>& boxes, const AnchorSet& anchors, size_t level) {
  const std::vector<Box> cell = cell_anchors(anchors.sizes.at(level), anchors.aspect_ratios);
  std::vector<float> ious(boxes.size());
  Size2 grids_of{-1, -1};
  std::vector<LevelGrid> grids;
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (!(boxes[i].padded == grids_of))
      grids = level_grids(grids_of = boxes[i].padded);  // an image's boxes run together
    ious[i] = best_grid_iou(boxes[i].box, cell, grids[level]);
  }
  return ious;
}

std::vector<float> best_ious(const std::vector<ResizedBox>& boxes, const AnchorSet& anchors) {
  std::vector<float> best(boxes.size(), 0.0f);
  for (size_t level = 0; level < anchors.sizes.size(); ++level) {
    const std::vector<float> ious = level_best_ious(boxes, anchors, level);
    for (size_t i = 0; i < best.size(); ++i) best[i] = std::max(best[i], ious[i]);
  }
  return best;
}

double box_side(const Box& b) { return std::sqrt(double(b[2] - b[0]) * double(b[3] - b[1])); }

double box_aspect_ratio(const Box& b) { return double(b[3] - b[1]) / double(b[2] - b[0]); }

int64_t count_positive(const std::vector<float>& ious, const Thresholds& thresholds) {
  // The matcher compares float32 IoUs with the threshold as float32 (torch's scalar comparison).
  const auto fg = static_cast<float>(thresholds.fg);
  int64_t n = 0;
  for (const float v : ious) n += v >= fg;
  return n;
}

namespace {

std::vector<Bucket> bucket_table() {
  const double inf = std::numeric_limits<double>::infinity();
  return {{"COCO small (area < 32^2)", 0, 32 * 32, true},
          {"COCO medium (32^2-96^2)", 32 * 32, 96 * 96, true},
          {"COCO large (area >= 96^2)", 96 * 96, inf, true},
          {"sqrt(area) < 8", 0, 8},
          {"8-16", 8, 16},
          {"16-32", 16, 32},
          {"32-64", 32, 64},
          {"64-128", 64, 128},
          {">= 128", 128, inf},
          {"all", 0, inf}};
}

}  // namespace

std::vector<Bucket> count_buckets(const std::vector<ResizedBox>& boxes, const std::vector<float>& ious,
                                  const Thresholds& thresholds) {
  std::vector<Bucket> buckets = bucket_table();
  const auto fg = static_cast<float>(thresholds.fg), bg = static_cast<float>(thresholds.bg);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const Box& box = boxes[i].box;
    const double area = double(box[2] - box[0]) * double(box[3] - box[1]);
    for (Bucket& b : buckets) {
      const double measure = b.by_area ? area : std::sqrt(area);
      if (measure < b.lo || measure >= b.hi) continue;
      b.boxes += 1;
      b.positive += ious[i] >= fg;
      b.iou50 += ious[i] >= 0.5f;
      b.below_bg += ious[i] < bg;
    }
  }
  return buckets;
}

}  // namespace mrcnn::anchors
