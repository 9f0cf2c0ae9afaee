#include "eval/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <thread>

#include "core/error.h"

namespace mrcnn::eval {
namespace {

// np.linspace(start, stop, num): i * step + start, the last value exactly stop.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> out(num);
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) {
    const volatile double scaled = i * step;  // two roundings, as numpy does (no fused multiply-add)
    out[i] = scaled + start;
  }
  out[num - 1] = stop;
  return out;
}

// numpy's pairwise summation of float64 (np.add.reduce), so that means match to the last bit.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double mean_of_defined(const std::vector<double>& values) {
  std::vector<double> kept;
  for (double v : values)
    if (v > -1) kept.push_back(v);
  if (kept.empty()) return -1;
  return pairwise_sum(kept.data(), kept.size()) / static_cast<double>(kept.size());
}

// What evaluateImg returns for one (category, area range, image).
struct ImageEval {
  bool present = false;
  std::vector<double> dt_scores;  // D, by decreasing score
  std::vector<double> dt_matches; // T x D: matched ground-truth id, 0 = none
  std::vector<uint8_t> dt_ignore; // T x D
  std::vector<uint8_t> gt_ignore; // G
};

// Ground truths and detections of one (image, category), with their IoUs.
struct Cell {
  std::vector<const CocoObject*> gts, dts;  // dts sorted by score (stable), at most maxDets[-1]
  std::vector<double> ious;                 // D x G, empty when either side is
};

void stable_sort_by_score(std::vector<const CocoObject*>& dts) {
  std::stable_sort(dts.begin(), dts.end(), [](const CocoObject* a, const CocoObject* b) { return -a->score < -b->score; });
}

ImageEval evaluate_image(const Cell& cell, const std::array<double, 2>& range, size_t max_det, const EvalParams& p) {
  ImageEval e;
  const auto& gts_in = cell.gts;
  if (gts_in.empty() && cell.dts.empty()) return e;
  e.present = true;
  const size_t G = gts_in.size();
  std::vector<uint8_t> ignore(G);
  for (size_t g = 0; g < G; ++g)
    ignore[g] = gts_in[g]->iscrowd || gts_in[g]->area < range[0] || gts_in[g]->area > range[1];
  // Not-ignored ground truth first (a stable sort on the ignore flag).
  std::vector<size_t> gt_order(G);
  std::iota(gt_order.begin(), gt_order.end(), 0);
  std::stable_sort(gt_order.begin(), gt_order.end(), [&](size_t a, size_t b) { return ignore[a] < ignore[b]; });
  const size_t D = std::min(cell.dts.size(), max_det);
  const size_t T = p.iou_thresholds.size();
  e.gt_ignore.resize(G);
  for (size_t g = 0; g < G; ++g) e.gt_ignore[g] = ignore[gt_order[g]];
  e.dt_scores.resize(D);
  for (size_t d = 0; d < D; ++d) e.dt_scores[d] = cell.dts[d]->score;
  e.dt_matches.assign(T * D, 0.0);
  e.dt_ignore.assign(T * D, 0);
  std::vector<double> gt_matches(T * G, 0.0);
  const size_t cols = G;  // cell.ious is D_all x G in the original ground-truth order
  if (!cell.ious.empty()) {
    for (size_t t = 0; t < T; ++t) {
      for (size_t d = 0; d < D; ++d) {
        double best = std::min(p.iou_thresholds[t], 1 - 1e-10);
        long m = -1;
        for (size_t g = 0; g < G; ++g) {
          const size_t og = gt_order[g];
          if (gt_matches[t * G + g] > 0 && !gts_in[og]->iscrowd) continue;
          if (m > -1 && e.gt_ignore[m] == 0 && e.gt_ignore[g] == 1) break;
          const double iou = cell.ious[d * cols + og];
          if (iou < best) continue;
          best = iou;
          m = static_cast<long>(g);
        }
        if (m == -1) continue;
        e.dt_ignore[t * D + d] = e.gt_ignore[m];
        e.dt_matches[t * D + d] = static_cast<double>(gts_in[gt_order[m]]->id);
        gt_matches[t * G + m] = static_cast<double>(cell.dts[d]->id);
      }
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (size_t d = 0; d < D; ++d) {
    const double area = cell.dts[d]->area;
    const bool outside = area < range[0] || area > range[1];
    for (size_t t = 0; t < T; ++t)
      if (e.dt_matches[t * D + d] == 0 && outside) e.dt_ignore[t * D + d] = 1;
  }
  return e;
}

template <typename Fn>
void parallel_for(size_t n, int threads, Fn fn) {
  const size_t workers = std::max<size_t>(1, std::min<size_t>(threads, n));
  if (workers == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (size_t i = w; i < n; i += workers) fn(i);
    });
  for (auto& t : pool) t.join();
}

}  // namespace

std::string iou_type_name(IouType type) { return type == IouType::Bbox ? "bbox" : "segm"; }

EvalParams::EvalParams()
    : iou_thresholds(linspace(.5, 0.95, static_cast<int>(std::round((0.95 - .5) / .05)) + 1)),
      recall_thresholds(linspace(.0, 1.00, static_cast<int>(std::round((1.00 - .0) / .01)) + 1)) {}

double EvalResult::precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const {
  const size_t R = params.recall_thresholds.size(), K = category_ids.size(), A = params.area_ranges.size(),
               M = params.max_dets.size();
  return precision[(((t * R + r) * K + k) * A + a) * M + m];
}

double EvalResult::category_ap(size_t k) const {
  std::vector<double> values;
  const size_t m = params.max_dets.size() - 1;
  for (size_t t = 0; t < params.iou_thresholds.size(); ++t)
    for (size_t r = 0; r < params.recall_thresholds.size(); ++r) values.push_back(precision_at(t, r, k, 0, m));
  return mean_of_defined(values);
}

EvalResult evaluate(const CocoGroundTruth& gt, const std::vector<CocoObject>& detections, IouType type, int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EvalResult result;
  result.type = type;
  const EvalParams& p = result.params;
  for (const auto& c : gt.categories()) result.category_ids.push_back(c.id);
  std::vector<int64_t> image_ids;
  for (const auto& [id, image] : gt.images()) image_ids.push_back(id);
  const size_t K = result.category_ids.size(), I = image_ids.size(), A = p.area_ranges.size(),
               M = p.max_dets.size(), T = p.iou_thresholds.size(), R = p.recall_thresholds.size();
  std::map<int64_t, size_t> image_index, category_index;
  for (size_t i = 0; i < I; ++i) image_index[image_ids[i]] = i;
  for (size_t k = 0; k < K; ++k) category_index[result.category_ids[k]] = k;

  // Cells (image, category), objects in file order as pycocotools' getAnnIds gives them.
  std::vector<Cell> cells(I * K);
  for (const auto& a : gt.annotations()) {
    const auto i = image_index.find(a.image_id);
    const auto k = category_index.find(a.category_id);
    if (i != image_index.end() && k != category_index.end()) cells[i->second * K + k->second].gts.push_back(&a);
  }
  for (const auto& d : detections) {
    const auto i = image_index.find(d.image_id);
    const auto k = category_index.find(d.category_id);
    if (i != image_index.end() && k != category_index.end()) cells[i->second * K + k->second].dts.push_back(&d);
  }
  const size_t max_det = static_cast<size_t>(p.max_dets.back());

  // Masks are made once per object that takes part (segm), indexed by the object's position in
  // the ground truth or the detections; errors are raised before any threads.
  std::vector<Rle> gt_masks, dt_masks;
  const auto mask_of = [&](const CocoObject* o) -> const Rle& {
    const CocoObject* gt_base = gt.annotations().data();
    if (o >= gt_base && o < gt_base + gt.annotations().size()) return gt_masks[o - gt_base];
    return dt_masks[o - detections.data()];
  };
  if (type == IouType::Segm) {
    gt_masks.resize(gt.annotations().size());
    dt_masks.resize(detections.size());
    for (auto& cell : cells) {
      stable_sort_by_score(cell.dts);
      if (cell.dts.size() > max_det) cell.dts.resize(max_det);
      for (const CocoObject* o : cell.gts) gt_masks[o - gt.annotations().data()] = object_mask(*o, gt);
      for (const CocoObject* o : cell.dts) dt_masks[o - detections.data()] = object_mask(*o, gt);
    }
  } else {
    for (auto& cell : cells) {
      stable_sort_by_score(cell.dts);
      if (cell.dts.size() > max_det) cell.dts.resize(max_det);
      for (const CocoObject* o : cell.gts)
        if (!o->bbox) throw Error(o->where + ": has no \"bbox\" (bbox evaluation needs boxes)");
    }
  }

  // IoUs per cell, then evaluateImg per (category, area, image), in parallel.
  parallel_for(cells.size(), threads, [&](size_t c) {
    Cell& cell = cells[c];
    if (cell.gts.empty() || cell.dts.empty()) return;
    std::vector<uint8_t> crowd;
    for (const CocoObject* g : cell.gts) crowd.push_back(g->iscrowd);
    if (type == IouType::Bbox) {
      std::vector<Box> d, g;
      for (const CocoObject* o : cell.dts) d.push_back(*o->bbox);
      for (const CocoObject* o : cell.gts) g.push_back(*o->bbox);
      cell.ious = box_iou_matrix(d, g, crowd);
    } else {
      std::vector<const Rle*> d, g;
      for (const CocoObject* o : cell.dts) d.push_back(&mask_of(o));
      for (const CocoObject* o : cell.gts) g.push_back(&mask_of(o));
      cell.ious = rle_iou_matrix(d, g, crowd);
    }
  });
  std::vector<ImageEval> evals(K * A * I);
  parallel_for(K * A, threads, [&](size_t ka) {
    const size_t k = ka / A, a = ka % A;
    for (size_t i = 0; i < I; ++i) evals[ka * I + i] = evaluate_image(cells[i * K + k], p.area_ranges[a], max_det, p);
  });

  // accumulate
  result.precision.assign(T * R * K * A * M, -1.0);
  result.recall.assign(T * K * A * M, -1.0);
  const double eps = std::nextafter(1.0, 2.0) - 1.0;  // np.spacing(1)
  parallel_for(K * A * M, threads, [&](size_t kam) {
    const size_t k = kam / (A * M), a = (kam / M) % A, m = kam % M;
    const size_t limit = static_cast<size_t>(p.max_dets[m]);
    std::vector<const ImageEval*> E;
    for (size_t i = 0; i < I; ++i)
      if (evals[(k * A + a) * I + i].present) E.push_back(&evals[(k * A + a) * I + i]);
    if (E.empty()) return;
    // All detections (each image's first maxDet), then a stable sort by decreasing score.
    struct Entry {
      double score;
      const ImageEval* e;
      size_t d, D;
    };
    std::vector<Entry> entries;
    size_t npig = 0;
    for (const ImageEval* e : E) {
      const size_t D = e->dt_scores.size();
      for (size_t d = 0; d < std::min(D, limit); ++d) entries.push_back({e->dt_scores[d], e, d, D});
      for (uint8_t ig : e->gt_ignore) npig += ig == 0;
    }
    if (npig == 0) return;
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) { return -x.score < -y.score; });
    const size_t nd = entries.size();
    std::vector<double> rc(nd), pr(nd);
    for (size_t t = 0; t < T; ++t) {
      double tp = 0, fp = 0;
      for (size_t j = 0; j < nd; ++j) {
        const Entry& en = entries[j];
        const bool matched = en.e->dt_matches[t * en.D + en.d] != 0;
        const bool ignored = en.e->dt_ignore[t * en.D + en.d] != 0;
        if (matched && !ignored) tp += 1;
        if (!matched && !ignored) fp += 1;
        rc[j] = tp / static_cast<double>(npig);
        pr[j] = tp / (fp + tp + eps);
      }
      result.recall[((t * K + k) * A + a) * M + m] = nd ? rc[nd - 1] : 0;
      for (size_t j = nd; j-- > 1;)
        if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
      for (size_t r = 0; r < R; ++r) {
        const size_t pi = static_cast<size_t>(std::lower_bound(rc.begin(), rc.end(), p.recall_thresholds[r]) - rc.begin());
        // pycocotools leaves 0 from the first recall level the detections do not reach.
        double q = 0;
        if (pi < nd) q = pr[pi];
        else {
          for (size_t rr = r; rr < R; ++rr) result.precision[((((t * R + rr) * K + k) * A + a) * M) + m] = 0;
          break;
        }
        result.precision[((((t * R + r) * K + k) * A + a) * M) + m] = q;
      }
    }
  });

  // summarize
  const auto summarize = [&](bool ap, double iou, const std::string& area, int64_t max_dets) {
    const size_t a = static_cast<size_t>(std::find(p.area_labels.begin(), p.area_labels.end(), area) - p.area_labels.begin());
    const size_t m = static_cast<size_t>(std::find(p.max_dets.begin(), p.max_dets.end(), max_dets) - p.max_dets.begin());
    std::vector<double> values;
    for (size_t t = 0; t < T; ++t) {
      if (iou >= 0 && p.iou_thresholds[t] != iou) continue;
      if (ap) {
        for (size_t r = 0; r < R; ++r)
          for (size_t k = 0; k < K; ++k) values.push_back(result.precision_at(t, r, k, a, m));
      } else {
        for (size_t k = 0; k < K; ++k) values.push_back(result.recall[((t * K + k) * A + a) * M + m]);
      }
    }
    return mean_of_defined(values);
  };
  result.stats = {summarize(true, -1, "all", 100),   summarize(true, .5, "all", 100),
                  summarize(true, .75, "all", 100),  summarize(true, -1, "small", 100),
                  summarize(true, -1, "medium", 100), summarize(true, -1, "large", 100),
                  summarize(false, -1, "all", 1),    summarize(false, -1, "all", 10),
                  summarize(false, -1, "all", 100),  summarize(false, -1, "small", 100),
                  summarize(false, -1, "medium", 100), summarize(false, -1, "large", 100)};
  return result;
}

std::string summary_text(const EvalResult& result) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_dets;
  };
  const Line lines[12] = {{true, "0.50:0.95", "all", 100},   {true, "0.50", "all", 100},
                          {true, "0.75", "all", 100},        {true, "0.50:0.95", "small", 100},
                          {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
                          {false, "0.50:0.95", "all", 1},     {false, "0.50:0.95", "all", 10},
                          {false, "0.50:0.95", "all", 100},   {false, "0.50:0.95", "small", 100},
                          {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100}};
  std::string out;
  char buffer[160];
  for (int i = 0; i < 12; ++i) {
    const Line& l = lines[i];
    std::snprintf(buffer, sizeof buffer, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", l.iou, l.area, l.max_dets,
                  result.stats[i]);
    out += buffer;
  }
  return out;
}

Json stats_json(const EvalResult& result) {
  static const char* names[12] = {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
  Json out = Json::object();
  for (int i = 0; i < 12; ++i) out[names[i]] = result.stats[i];
  return out;
}

}  // namespace mrcnn::eval
