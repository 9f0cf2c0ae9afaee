#include "eval/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "eval/parallel.h"

// Reviewers read this file next to pycocotools' cocoeval.py (COCOeval); its names there:
//   evaluate_cells      evaluate(): _prepare, computeIoU per (imgId, catId), evaluateImg per
//                       (catId, areaRng, imgId) with maxDet = maxDets[-1]
//   Cell                self._gts[imgId, catId], self._dts[imgId, catId], self.ious[imgId, catId],
//                       and the part of evaluateImg's dicts for its image and category that
//                       accumulate reads (present() == false: None): dtScores are the dts' scores,
//                       dt_status holds dtm != 0 (kMatched) and dtIg (kIgnored) per area range,
//                       counted_gts how many gtIg are 0
//   evaluate_area_range evaluateImg of one cell and area range: gt_order = gtind (its first
//                       counted_gts count), gt_taken = gtm > 0
//   accumulate          accumulate(); k, a, m index k_list, a_list, m_list (every category, area
//                       range and maxDets: the parameters evaluated are the ones accumulated)
//   Pool                one category's detections sorted by inds (mergesort, so a stable sort)
//                       once for every (a, m): the inds of maxDets m are the same order with the
//                       detections past m's cut left out; npig per area range
//   accumulate_threshold  one row t of tp_sum / fp_sum: tp and fp are the running sums of tps
//                       and fps, then rc, pr and q as there; ss (the scores array) is not kept,
//                       nothing reads it
//   Layout              the numpy (C-order) index into precision[T,R,K,A,M] and recall[T,K,A,M]
//   summarize           _summarizeDets, its rows in kStats; summarize_stat is _summarize

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

// A detection's outcome at one IoU threshold (pycocotools' dtm != 0 and dtIg).
enum : uint8_t { kMatched = 1, kIgnored = 2 };

// Ground truths and detections of one (image, category), their IoUs, and what evaluateImg returns
// for them in each area range, as much of it as accumulate reads.
struct Cell {
  std::vector<const CocoObject*> gts, dts;  // dts sorted by score (stable), at most maxDets[-1]
  std::vector<double> ious;                 // D x G, empty when either side is
  std::vector<size_t> counted_gts;          // per area range: the ground truths that count (gtIg == 0)
  std::vector<uint8_t> dt_status;           // D x A x T: kMatched | kIgnored

  bool present() const { return !gts.empty() || !dts.empty(); }
};

void stable_sort_by_score(std::vector<const CocoObject*>& dts) {
  std::stable_sort(dts.begin(), dts.end(), [](const CocoObject* a, const CocoObject* b) { return -a->score < -b->score; });
}

// The cell's ground truths with those that count first, each part in file order (gtind: a stable
// sort on the ignore flag); returns how many count.
size_t order_ground_truth(const Cell& cell, const std::array<double, 2>& range, std::vector<size_t>& order) {
  const auto ignored = [&](const CocoObject* g) { return g->iscrowd || g->area < range[0] || g->area > range[1]; };
  order.clear();
  for (size_t g = 0; g < cell.gts.size(); ++g)
    if (!ignored(cell.gts[g])) order.push_back(g);
  const size_t counted = order.size();
  for (size_t g = 0; g < cell.gts.size(); ++g)
    if (ignored(cell.gts[g])) order.push_back(g);
  return counted;
}

// evaluateImg of one cell for one area range: each detection, highest score first, takes the
// best still-free ground truth at each IoU threshold (crowd regions stay free; ignored ones last).
// Writes detection d's outcome at threshold t to status[d * stride + t] (zeros on entry); returns
// how many ground truths count. The scratch vectors are per thread, so that the 10^5-10^6 calls
// allocate nothing.
size_t evaluate_area_range(const Cell& cell, const std::array<double, 2>& range, const EvalParams& p,
                           uint8_t* status, size_t stride) {
  thread_local std::vector<size_t> gt_order;
  thread_local std::vector<uint8_t> gt_taken;  // T x G: gtm > 0
  const size_t G = cell.gts.size(), D = cell.dts.size(), T = p.iou_thresholds.size();
  const size_t counted = order_ground_truth(cell, range, gt_order);
  gt_taken.assign(T * G, 0);
  for (size_t t = 0; t < T && !cell.ious.empty(); ++t) {
    for (size_t d = 0; d < D; ++d) {
      double best = std::min(p.iou_thresholds[t], 1 - 1e-10);
      long m = -1;
      for (size_t g = 0; g < G; ++g) {
        const size_t og = gt_order[g];
        if (gt_taken[t * G + g] && !cell.gts[og]->iscrowd) continue;
        if (m > -1 && static_cast<size_t>(m) < counted && g >= counted) break;
        const double iou = cell.ious[d * G + og];  // cell.ious is in the original ground-truth order
        if (iou < best) continue;
        best = iou;
        m = static_cast<long>(g);
      }
      if (m == -1) continue;
      status[d * stride + t] = (static_cast<size_t>(m) >= counted ? kIgnored : 0) |
                               (cell.gts[gt_order[m]]->id != 0 ? kMatched : 0);
      gt_taken[t * G + m] = cell.dts[d]->id > 0;
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (size_t d = 0; d < D; ++d) {
    const double area = cell.dts[d]->area;
    if (area >= range[0] && area <= range[1]) continue;
    for (size_t t = 0; t < T; ++t)
      if (!(status[d * stride + t] & kMatched)) status[d * stride + t] |= kIgnored;
  }
  return counted;
}

// evaluateImg of one cell for every area range (nothing for a cell without objects: None).
void evaluate_cell(Cell& cell, const EvalParams& p) {
  if (!cell.present()) return;
  const size_t A = p.area_ranges.size(), T = p.iou_thresholds.size(), D = cell.dts.size();
  cell.counted_gts.resize(A);
  cell.dt_status.assign(A * T * D, 0);
  for (size_t a = 0; a < A; ++a) {
    // Without detections the status array is empty and its data() may be null: no offset then.
    auto* statuses = D == 0 ? cell.dt_status.data() : cell.dt_status.data() + a * T;
    cell.counted_gts[a] = evaluate_area_range(cell, p.area_ranges[a], p, statuses, A * T);
  }
}

// Where (t, r, k, a, m) sits in the accumulated arrays, flattened in C order as numpy holds them:
// precision [T][R][K][A][M] and recall [T][K][A][M] (the same shape without the recall levels).
struct Layout {
  size_t T, R, K, A, M;

  explicit Layout(const EvalResult& result)
      : T(result.params.iou_thresholds.size()),
        R(result.params.recall_thresholds.size()),
        K(result.category_ids.size()),
        A(result.params.area_ranges.size()),
        M(result.params.max_dets.size()) {}
  size_t precision(size_t t, size_t r, size_t k, size_t a, size_t m) const { return index(t, r, k, a, m, R); }
  size_t recall(size_t t, size_t k, size_t a, size_t m) const { return index(t, 0, k, a, m, 1); }
  size_t precision_size() const { return T * R * K * A * M; }
  size_t recall_size() const { return T * K * A * M; }

 private:
  size_t index(size_t t, size_t r, size_t k, size_t a, size_t m, size_t levels) const {
    return (((t * levels + r) * K + k) * A + a) * M + m;
  }
};

// The (image, category) cells, cell (i, k) at i * K + k, objects in file order as pycocotools'
// getAnnIds gives them; objects of other images or categories take no part.
std::vector<Cell> make_cells(const CocoGroundTruth& gt, const std::vector<CocoObject>& detections,
                             const std::vector<int64_t>& image_ids, const std::vector<int64_t>& category_ids) {
  const size_t K = category_ids.size();
  std::unordered_map<int64_t, size_t> image_index, category_index;  // looked up once per object
  for (size_t i = 0; i < image_ids.size(); ++i) image_index[image_ids[i]] = i;
  for (size_t k = 0; k < K; ++k) category_index[category_ids[k]] = k;
  std::vector<Cell> cells(image_ids.size() * K);
  const auto cell_of = [&](const CocoObject& o) -> Cell* {
    const auto i = image_index.find(o.image_id);
    const auto k = category_index.find(o.category_id);
    if (i == image_index.end() || k == category_index.end()) return nullptr;
    return &cells[i->second * K + k->second];
  };
  for (const auto& a : gt.annotations())
    if (Cell* cell = cell_of(a)) cell->gts.push_back(&a);
  for (const auto& d : detections)
    if (Cell* cell = cell_of(d)) cell->dts.push_back(&d);
  return cells;
}

// Each cell's detections by decreasing score, the first maxDets[-1] of them (computeIoU's cut).
void keep_top_detections(std::vector<Cell>& cells, size_t max_det) {
  for (auto& cell : cells) {
    stable_sort_by_score(cell.dts);
    if (cell.dts.size() > max_det) cell.dts.resize(max_det);
  }
}

// bbox evaluation: every ground truth that takes part has a box (checked before any threads).
void require_boxes(const std::vector<Cell>& cells) {
  for (const auto& cell : cells)
    for (const CocoObject* o : cell.gts)
      if (!o->bbox) throw Error(o->where + ": has no \"bbox\" (bbox evaluation needs boxes)");
}

// segm evaluation: the mask of every object an IoU needs (its cell has both ground truth and
// detections), made once, indexed by the object's position in the ground truth or the detections;
// the masks of the other objects that take part are checked, not made. In parallel, before the
// IoUs; a bad object's error is raised as pycocotools raises it: the first in cell order.
class ObjectMasks {
 public:
  ObjectMasks(const CocoGroundTruth& gt, const std::vector<CocoObject>& detections, const std::vector<Cell>& cells,
              int threads)
      : gt_objects_(gt.annotations().data()),
        dt_objects_(detections.data()),
        gt_count_(gt.annotations().size()),
        masks_(gt.annotations().size() + detections.size()) {
    std::vector<std::pair<const CocoObject*, bool>> objects;  // in cell order; true: its mask is needed
    for (const auto& cell : cells) {
      const bool needed = !cell.gts.empty() && !cell.dts.empty();
      for (const CocoObject* o : cell.gts) objects.emplace_back(o, needed);
      for (const CocoObject* o : cell.dts) objects.emplace_back(o, needed);
    }
    FirstError first;
    parallel_for(objects.size(), threads, [&](size_t j) {
      const auto [o, needed] = objects[j];
      first.run(j, [&] {
        if (needed) masks_[index(o)] = object_mask(*o, gt);
        else check_object_mask(*o, gt);
      });
    });
    first.rethrow();
  }
  const Rle& of(const CocoObject* o) const { return masks_[index(o)]; }

 private:
  // The ground truth's masks first, then the detections'.
  size_t index(const CocoObject* o) const {
    if (o >= gt_objects_ && o < gt_objects_ + gt_count_) return static_cast<size_t>(o - gt_objects_);
    return gt_count_ + static_cast<size_t>(o - dt_objects_);
  }

  const CocoObject* gt_objects_;
  const CocoObject* dt_objects_;
  size_t gt_count_;
  std::vector<Rle> masks_;
};

// computeIoU of one cell with both ground truth and detections: D x G, crowd ground truth by
// intersection over the detection's area.
void compute_ious(Cell& cell, IouType type, const ObjectMasks* masks) {
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
    for (const CocoObject* o : cell.dts) d.push_back(&masks->of(o));
    for (const CocoObject* o : cell.gts) g.push_back(&masks->of(o));
    cell.ious = rle_iou_matrix(d, g, crowd);
  }
}

// COCOeval.evaluate: the cells, their masks (segm), then each cell's IoUs and evaluateImg for
// every area range, in parallel.
std::vector<Cell> evaluate_cells(const CocoGroundTruth& gt, const std::vector<CocoObject>& detections, IouType type,
                                 const std::vector<int64_t>& category_ids, const EvalParams& p, int threads) {
  std::vector<int64_t> image_ids;
  for (const auto& [id, image] : gt.images()) image_ids.push_back(id);
  std::vector<Cell> cells = make_cells(gt, detections, image_ids, category_ids);
  keep_top_detections(cells, static_cast<size_t>(p.max_dets.back()));
  std::optional<ObjectMasks> masks;
  if (type == IouType::Segm) masks.emplace(gt, detections, cells, threads);
  else require_boxes(cells);
  parallel_for(cells.size(), threads, [&](size_t c) {
    compute_ious(cells[c], type, masks ? &*masks : nullptr);
    evaluate_cell(cells[c], p);
  });
  return cells;
}

// A category's detections (each image's first maxDets[-1]) in accumulate's order: by decreasing
// score, a stable sort of them in image order (pycocotools' mergesort of the concatenated
// dtScores). Each keeps its place in its image (for the cuts of the smaller maxDets) and its A x T
// outcomes, gathered as status[(j * A + a) * T + t]; npig: per area range, how many ground truths
// count.
struct Pool {
  size_t size = 0;
  std::vector<size_t> npig;
  std::vector<uint32_t> place;
  std::vector<uint8_t> status;
};

Pool pool_category(const std::vector<Cell>& cells, size_t k, size_t K, size_t A, size_t T) {
  struct Entry {
    double score;
    uint32_t image, d;  // the cell is image * K + k
  };
  Pool pool;
  pool.npig.assign(A, 0);
  std::vector<Entry> entries;
  for (size_t c = k; c < cells.size(); c += K) {
    if (!cells[c].present()) continue;
    for (size_t d = 0; d < cells[c].dts.size(); ++d)
      entries.push_back({cells[c].dts[d]->score, static_cast<uint32_t>(c / K), static_cast<uint32_t>(d)});
    for (size_t a = 0; a < A; ++a) pool.npig[a] += cells[c].counted_gts[a];
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) { return -x.score < -y.score; });
  const size_t n = pool.size = entries.size();
  pool.place.resize(n);
  pool.status.resize(n * A * T);
  for (size_t j = 0; j < n; ++j) {
    const Cell& cell = cells[entries[j].image * K + k];
    pool.place[j] = entries[j].d;
    std::copy_n(cell.dt_status.data() + entries[j].d * A * T, A * T, pool.status.data() + j * A * T);
  }
  return pool;
}

// Where one (k, a, m) and IoU threshold t reads its pool and writes its results; recall_of[tp] is
// tp / npig (one division per value, shared by every row of the pool and area range).
struct Row {
  size_t k, a, m, t, npig;
  const std::vector<double>& recall_of;
};

// One row: recall reached, and precision at each recall threshold (made non-increasing from the
// right first; 0 from the first threshold the detections do not reach, which is what
// pycocotools' try/except leaves in q). rc and pr: scratch of the pool's size. The ignored
// detections are left out: tp and fp do not move at one, so rc and pr there repeat the values
// before it (0 before the first that counts). A repeat is never the first position reaching a
// recall threshold (the one before it reaches it too), except leading zeros for threshold 0,
// where the maximum to the right is the same; nor does it change the recall reached.
void accumulate_row(const Pool& pool, const Row& row, EvalResult& result, std::vector<double>& rc,
                    std::vector<double>& pr) {
  const Layout at(result);
  const double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)
  const size_t max_det = static_cast<size_t>(result.params.max_dets[row.m]);
  // An empty pool's status may have a null data(): no offset then (nothing is read).
  const uint8_t* status = pool.size == 0 ? pool.status.data() : pool.status.data() + row.a * at.T + row.t;
  size_t nd = 0, tp = 0, fp = 0;
  for (size_t j = 0; j < pool.size; ++j) {
    const uint8_t s = status[j * at.A * at.T];
    if ((s & kIgnored) || pool.place[j] >= max_det) continue;
    (s & kMatched ? tp : fp) += 1;
    // tp <= npig unless detections share an id of 0 (pycocotools' gtm then leaves their match free)
    rc[nd] = tp < row.recall_of.size() ? row.recall_of[tp] : static_cast<double>(tp) / static_cast<double>(row.npig);
    pr[nd++] = static_cast<double>(tp) / (static_cast<double>(fp) + static_cast<double>(tp) + eps);
  }
  result.recall[at.recall(row.t, row.k, row.a, row.m)] = nd ? rc[nd - 1] : 0;
  for (size_t j = nd; j-- > 1;) pr[j - 1] = std::max(pr[j - 1], pr[j]);
  const std::vector<double>& rec_thrs = result.params.recall_thresholds;
  const auto rc_end = rc.begin() + static_cast<long>(nd);
  for (size_t r = 0; r < at.R; ++r) {
    // np.searchsorted(rc, recThrs, side='left')
    const size_t pi = static_cast<size_t>(std::lower_bound(rc.begin(), rc_end, rec_thrs[r]) - rc.begin());
    result.precision[at.precision(row.t, r, row.k, row.a, row.m)] = pi < nd ? pr[pi] : 0;
  }
}

// COCOeval.accumulate: precision and recall of every (category, area range, maxDets), in
// parallel over the categories; -1 where no image has the category or none of its ground truth
// counts.
void accumulate(const std::vector<Cell>& cells, EvalResult& result, int threads) {
  const Layout at(result);
  result.precision.assign(at.precision_size(), -1.0);
  result.recall.assign(at.recall_size(), -1.0);
  parallel_for(at.K, threads, [&](size_t k) {
    const Pool pool = pool_category(cells, k, at.K, at.A, at.T);
    std::vector<double> rc(pool.size), pr(pool.size), recall_of;
    for (size_t a = 0; a < at.A; ++a) {
      const size_t npig = pool.npig[a];
      if (npig == 0) continue;
      recall_of.resize(npig + 1);
      for (size_t tp = 0; tp <= npig; ++tp) recall_of[tp] = static_cast<double>(tp) / static_cast<double>(npig);
      for (size_t m = 0; m < at.M; ++m)
        for (size_t t = 0; t < at.T; ++t) accumulate_row(pool, {k, a, m, t, npig, recall_of}, result, rc, pr);
    }
  });
}

// One of the 12 stats _summarizeDets computes and prints.
struct Stat {
  const char* name;      // the key in stats_json
  bool ap;               // precision (AP) or recall (AR)
  double iou;            // one IoU threshold, or -1 for all of them
  const char* iou_text;  // as summarize prints it
  const char* area;
  size_t max_dets;        // index into EvalParams::max_dets (pycocotools: maxDets[0], [1], [2])
};
// AP's own line asks pycocotools for maxDets=100 literally, so with other maxDets it prints -1; here
// it takes maxDets[2] like the other lines, which is the same number under the default parameters.
constexpr std::array<Stat, 12> kStats = {{
    {"AP", true, -1, "0.50:0.95", "all", 2},       {"AP50", true, .5, "0.50", "all", 2},
    {"AP75", true, .75, "0.75", "all", 2},         {"APs", true, -1, "0.50:0.95", "small", 2},
    {"APm", true, -1, "0.50:0.95", "medium", 2},   {"APl", true, -1, "0.50:0.95", "large", 2},
    {"AR1", false, -1, "0.50:0.95", "all", 0},     {"AR10", false, -1, "0.50:0.95", "all", 1},
    {"AR100", false, -1, "0.50:0.95", "all", 2},   {"ARs", false, -1, "0.50:0.95", "small", 2},
    {"ARm", false, -1, "0.50:0.95", "medium", 2},  {"ARl", false, -1, "0.50:0.95", "large", 2}}};

template <typename T, typename V>
size_t index_of(const std::vector<T>& values, const V& value) {
  return static_cast<size_t>(std::find(values.begin(), values.end(), value) - values.begin());
}

// _summarize: the mean of the defined (> -1) precisions or recalls of one stat, in numpy's order.
double summarize_stat(const EvalResult& result, const Stat& stat) {
  const EvalParams& p = result.params;
  const Layout at(result);
  const size_t a = index_of(p.area_labels, std::string(stat.area)), m = stat.max_dets;
  std::vector<double> values;
  for (size_t t = 0; t < at.T; ++t) {
    if (stat.iou >= 0 && p.iou_thresholds[t] != stat.iou) continue;
    if (stat.ap) {
      for (size_t r = 0; r < at.R; ++r)
        for (size_t k = 0; k < at.K; ++k) values.push_back(result.precision[at.precision(t, r, k, a, m)]);
    } else {
      for (size_t k = 0; k < at.K; ++k) values.push_back(result.recall[at.recall(t, k, a, m)]);
    }
  }
  return mean_of_defined(values);
}

// COCOeval.summarize's numbers (_summarizeDets).
std::array<double, 12> summarize(const EvalResult& result) {
  std::array<double, 12> stats{};
  for (size_t i = 0; i < stats.size(); ++i) stats[i] = summarize_stat(result, kStats[i]);
  return stats;
}

}  // namespace

std::string iou_type_name(IouType type) { return type == IouType::Bbox ? "bbox" : "segm"; }

std::vector<IouType> iou_types_to_score(const std::string& requested, const std::vector<CocoObject>& detections,
                                        const std::string& source) {
  const bool box_results = !detections.empty() && std::none_of(detections.begin(), detections.end(), [](const auto& d) {
    return d.segmentation.kind != Segmentation::Kind::None;
  });
  if (requested == "segm" && box_results)
    throw Error(source + ": --iou-type segm: no detection has a \"segmentation\" (box results, as a model without "
                "masks writes them); score them with --iou-type bbox");
  if (requested == "bbox" || (requested == "both" && box_results)) return {IouType::Bbox};
  if (requested == "segm") return {IouType::Segm};
  return {IouType::Bbox, IouType::Segm};
}

EvalParams::EvalParams()
    : iou_thresholds(linspace(.5, 0.95, static_cast<int>(std::round((0.95 - .5) / .05)) + 1)),
      recall_thresholds(linspace(.0, 1.00, static_cast<int>(std::round((1.00 - .0) / .01)) + 1)) {}

double EvalResult::precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const {
  return precision[Layout(*this).precision(t, r, k, a, m)];
}

double EvalResult::category_ap(size_t k) const {
  std::vector<double> values;
  const size_t m = params.max_dets.size() - 1;
  for (size_t t = 0; t < params.iou_thresholds.size(); ++t)
    for (size_t r = 0; r < params.recall_thresholds.size(); ++r) values.push_back(precision_at(t, r, k, 0, m));
  return mean_of_defined(values);
}

EvalResult evaluate(const CocoGroundTruth& gt, const std::vector<CocoObject>& detections, IouType type, int threads,
                    int64_t max_detections) {
  threads = all_cores_if_zero(threads);
  EvalResult result;
  result.type = type;
  result.params.max_dets.back() = max_detections;
  for (const auto& c : gt.categories()) result.category_ids.push_back(c.id);
  const std::vector<Cell> cells = evaluate_cells(gt, detections, type, result.category_ids, result.params, threads);
  accumulate(cells, result, threads);
  result.stats = summarize(result);
  return result;
}

std::string summary_text(const EvalResult& result) {
  std::string out;
  char buffer[160];
  for (size_t i = 0; i < kStats.size(); ++i) {
    const Stat& s = kStats[i];
    std::snprintf(buffer, sizeof buffer, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  s.ap ? "Average Precision" : "Average Recall", s.ap ? "(AP)" : "(AR)", s.iou_text, s.area,
                  static_cast<int>(result.params.max_dets[s.max_dets]), result.stats[i]);
    out += buffer;
  }
  return out;
}

Json stats_json(const EvalResult& result) {
  Json out = Json::object();
  for (size_t i = 0; i < kStats.size(); ++i) out[kStats[i].name] = result.stats[i];
  return out;
}

}  // namespace mrcnn::eval
