#include "anchors/anchor_search.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/log.h"

namespace mrcnn::anchors {
namespace {

// What the search maximises: the boxes that reach fg, then (to climb where no box crosses it) the
// sum of each box's best IoU capped at fg.
struct Score {
  int64_t positive = 0;
  double capped_sum = 0;
  bool better_than(const Score& o) const {
    return positive != o.positive ? positive > o.positive : capped_sum > o.capped_sum + 1e-6;
  }
};

Score score_of(const std::vector<float>& best, float fg) {
  Score s;
  for (const float v : best) s.positive += v >= fg, s.capped_sum += std::min(v, fg);
  return s;
}

// A size a level may hold: 1 to 32 times its nominal stride (4, 8, ..., 64; torchvision's anchors are 8
// times it). The RPN head is shared by the levels, so a level's anchors stay near its scale.
bool fits_level(int64_t size, size_t level) {
  const int64_t stride = int64_t{4} << level;
  return size >= stride && size <= 32 * stride;
}

// Integer sizes: every one up to 16 pixels, then 8 per octave, up to twice the largest box (and at
// least 256, so that P6 finds sizes of its range).
std::vector<int64_t> size_candidates(const std::vector<ResizedBox>& boxes) {
  double largest = 0;
  for (const auto& b : boxes) largest = std::max(largest, box_side(b.box));
  std::set<int64_t> sizes;
  for (int64_t s = 2; s <= 16; ++s) sizes.insert(s);
  for (int i = 32; std::exp2(i / 8.0) <= std::max(256.0, 2 * largest); ++i)
    sizes.insert(std::llround(std::exp2(i / 8.0)));
  return {sizes.begin(), sizes.end()};
}

// Proposed aspect ratios differ by at least this factor (one step of the candidates), so that no
// two anchors of a location are nearly the same box.
const double kRatioSpacing = std::exp2(0.25);

// Aspect ratios 4 per octave from 1/8 to 8, to three decimals.
std::vector<double> ratio_candidates() {
  std::vector<double> ratios;
  for (int i = -12; i <= 12; ++i) ratios.push_back(std::round(std::exp2(i / 4.0) * 1000) / 1000);
  return ratios;
}

// For given aspect ratios: every box's best IoU with the anchors of one candidate size at one
// level, for every level and candidate; a level with several sizes takes the maximum over them.
struct SizeTable {
  std::vector<int64_t> sizes;
  std::vector<std::vector<std::vector<float>>> ious;  // [level][candidate][box]
};

SizeTable size_table(const std::vector<ResizedBox>& boxes, const std::vector<int64_t>& sizes,
                     const std::vector<double>& ratios, size_t levels) {
  SizeTable table{sizes, std::vector<std::vector<std::vector<float>>>(levels)};
  for (size_t level = 0; level < levels; ++level)
    for (const int64_t s : sizes) {
      AnchorSet one{std::vector<std::vector<int64_t>>(levels, {s}), ratios};
      table.ious[level].push_back(level_best_ious(boxes, one, level));
    }
  return table;
}

// Sizes as candidate indices in slot order (level-major, per_level slots per level, increasing).
using Slots = std::vector<size_t>;

Score slots_score(const SizeTable& t, const Slots& slots, size_t per_level, float fg) {
  std::vector<float> max(t.ious[0][0].size(), 0.0f);
  for (size_t k = 0; k < slots.size(); ++k) {
    const std::vector<float>& ious = t.ious[k / per_level][slots[k]];
    for (size_t i = 0; i < max.size(); ++i) max[i] = std::max(max[i], ious[i]);
  }
  return score_of(max, fg);
}

// The score of the elementwise maximum of two IoU arrays.
Score score_of_max(const std::vector<float>& a, const std::vector<float>& b, float fg) {
  Score s;
  for (size_t i = 0; i < a.size(); ++i) {
    const float v = std::max(a[i], b[i]);
    s.positive += v >= fg, s.capped_sum += std::min(v, fg);
  }
  return s;
}

// Whether candidate c in this slot leaves a larger size of the level's range for each slot of the
// level after it.
bool room_after(const SizeTable& t, size_t c, size_t slot, size_t per_level) {
  const size_t later = per_level - 1 - slot % per_level;
  return c + later < t.sizes.size() && fits_level(t.sizes[c + later], slot / per_level);
}

// Beam search over the slots in order: each partial choice extended by every larger candidate
// (leaving enough for the slots after it), the best `width` kept by their score so far.
Slots beam_sizes(const SizeTable& t, size_t levels, size_t per_level, float fg, size_t width = 32) {
  struct State {
    Slots slots;
    std::vector<float> best;
  };
  struct Choice {
    size_t parent, candidate;
    Score score;
  };
  std::vector<State> beam{{{}, std::vector<float>(t.ious[0][0].size(), 0.0f)}};
  const size_t count = levels * per_level, n = t.sizes.size();
  for (size_t slot = 0; slot < count; ++slot) {
    std::vector<Choice> choices;
    for (size_t p = 0; p < beam.size(); ++p)
      for (size_t c = beam[p].slots.empty() ? 0 : beam[p].slots.back() + 1; c + (count - slot) <= n; ++c)
        if (fits_level(t.sizes[c], slot / per_level) && room_after(t, c, slot, per_level))
          choices.push_back({p, c, score_of_max(beam[p].best, t.ious[slot / per_level][c], fg)});
    std::stable_sort(choices.begin(), choices.end(), [](const Choice& a, const Choice& b) {
      return a.score.positive != b.score.positive ? a.score.positive > b.score.positive
                                                  : a.score.capped_sum > b.score.capped_sum;
    });
    std::vector<State> next;
    for (size_t k = 0; k < choices.size() && k < width; ++k) {
      State e = beam[choices[k].parent];
      e.slots.push_back(choices[k].candidate);
      const std::vector<float>& ious = t.ious[slot / per_level][choices[k].candidate];
      for (size_t i = 0; i < e.best.size(); ++i) e.best[i] = std::max(e.best[i], ious[i]);
      next.push_back(std::move(e));
    }
    if (next.empty()) return {};
    beam = std::move(next);
  }
  return beam.front().slots;
}

// Coordinate search over the slots with the table: each slot over the candidates between its
// neighbours, until a round changes nothing (at most 4).
void refine_sizes(const SizeTable& t, Slots& slots, size_t per_level, float fg) {
  Score score = slots_score(t, slots, per_level, fg);
  for (int round = 0; round < 4; ++round) {
    bool improved = false;
    for (size_t k = 0; k < slots.size(); ++k) {
      const size_t lo = k == 0 ? 0 : slots[k - 1] + 1, hi = k + 1 == slots.size() ? t.sizes.size() : slots[k + 1];
      for (size_t c = lo; c < hi; ++c) {
        if (!fits_level(t.sizes[c], k / per_level)) continue;
        Slots trial = slots;
        trial[k] = c;
        const Score s = slots_score(t, trial, per_level, fg);
        if (s.better_than(score)) slots = trial, score = s, improved = true;
      }
    }
    if (!improved) return;
  }
}

// Each aspect ratio (kept between its neighbours) over the ratio candidates, sizes fixed; a ratio
// changes only for more positives (ratios the boxes do not need stay as configured).
void refine_ratios(const std::vector<ResizedBox>& boxes, AnchorSet& anchors, float fg) {
  Score score = score_of(best_ious(boxes, anchors), fg);
  for (int round = 0; round < 2; ++round) {
    bool improved = false;
    for (size_t r = 0; r < anchors.aspect_ratios.size(); ++r)
      for (const double v : ratio_candidates()) {
        const auto& now = anchors.aspect_ratios;
        const double lo = r == 0 ? 0 : now[r - 1] * kRatioSpacing,
                     hi = r + 1 == now.size() ? INFINITY : now[r + 1] / kRatioSpacing;
        if (v < lo * (1 - 1e-3) || v > hi * (1 + 1e-3) || v == now[r]) continue;
        AnchorSet trial = anchors;
        trial.aspect_ratios[r] = v;
        const Score s = score_of(best_ious(boxes, trial), fg);
        if (s.positive > score.positive) anchors = trial, score = s, improved = true;
      }
    if (!improved) return;
  }
}

struct Found {
  AnchorSet anchors;
  Score score;
};

// Sizes for the ratios (beam search, refined), then the ratios for those sizes; again with the new
// ratios until they stay (at most 3 turns). The best set seen is kept.
Found fit(const std::vector<ResizedBox>& boxes, std::vector<double> ratios, size_t levels, size_t per_level, float fg) {
  const std::vector<int64_t> candidates = size_candidates(boxes);
  Found best{{}, {-1, 0}};
  for (int turn = 0; turn < 3; ++turn) {
    const SizeTable table = size_table(boxes, candidates, ratios, levels);
    Slots slots = beam_sizes(table, levels, per_level, fg);
    if (slots.size() != levels * per_level) break;  // no sizes fit the levels' ranges
    refine_sizes(table, slots, per_level, fg);
    AnchorSet anchors{std::vector<std::vector<int64_t>>(levels), ratios};
    for (size_t k = 0; k < slots.size(); ++k) anchors.sizes[k / per_level].push_back(candidates[slots[k]]);
    refine_ratios(boxes, anchors, fg);
    const Score score = score_of(best_ious(boxes, anchors), fg);
    if (score.better_than(best.score)) best = {anchors, score};
    if (anchors.aspect_ratios == ratios) break;
    ratios = anchors.aspect_ratios;
  }
  return best;
}

// Aspect ratios from k-means of the boxes' log aspect ratios: pushed kRatioSpacing apart where
// closer, keeping their mean log (square boxes give 0.84, 1, 1.19), to two decimals.
std::vector<double> kmeans_ratios(const std::vector<ResizedBox>& boxes, size_t count) {
  std::vector<double> logs;
  for (const auto& b : boxes) logs.push_back(std::log(box_aspect_ratio(b.box)));
  std::vector<double> centres = kmeans_1d(logs, count);
  double mean_before = 0, mean_after = 0;
  for (size_t i = 0; i < centres.size(); ++i) {
    mean_before += centres[i] / double(count);
    if (i > 0) centres[i] = std::max(centres[i], centres[i - 1] + std::log(kRatioSpacing));
    mean_after += centres[i] / double(count);
  }
  std::vector<double> ratios;
  for (const double c : centres)
    ratios.push_back(std::max(0.01, std::round(std::exp(c - mean_after + mean_before) * 100) / 100));
  return ratios;
}

// The best set with per_level sizes per level and the current number of ratios, from the
// current ratios, or from the k-means ones when they make more positives.
Found best_of_shape(const std::vector<ResizedBox>& boxes, const AnchorSet& current, size_t per_level, float fg) {
  const size_t levels = current.sizes.size();
  Found best = fit(boxes, current.aspect_ratios, levels, per_level, fg);
  Found seeded = fit(boxes, kmeans_ratios(boxes, current.aspect_ratios.size()), levels, per_level, fg);
  return seeded.score.positive > best.score.positive ? seeded : best;
}

// A level's configured sizes in per_level slots: as configured for the same count, else its first
// size times 2^(k / per_level).
std::vector<int64_t> configured_level(const AnchorSet& current, size_t level, size_t per_level) {
  if (current.sizes[level].size() == per_level) return current.sizes[level];
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < per_level; ++k)
    sizes.push_back(std::llround(double(current.sizes[level][0]) * std::exp2(double(k) / double(per_level))));
  return sizes;
}

bool increasing(const AnchorSet& anchors) {
  int64_t last = 0;
  for (const auto& level : anchors.sizes)
    for (const int64_t s : level) {
      if (s <= last) return false;
      last = s;
    }
  return true;
}

// The levels the boxes do not need, from the top down, get their configured sizes back (objects
// larger than the training set's keep their anchors): a level's sizes are replaced while that
// keeps every positive and the sizes still increase.
Found restore_unneeded_levels(const std::vector<ResizedBox>& boxes, const AnchorSet& current, Found found, float fg) {
  if (found.anchors.sizes.empty()) return found;
  const size_t per_level = found.anchors.sizes[0].size();
  for (size_t level = found.anchors.sizes.size(); level-- > 0;) {
    AnchorSet trial = found.anchors;
    trial.sizes[level] = configured_level(current, level, per_level);
    if (trial == found.anchors) continue;
    if (!increasing(trial)) break;
    const Score s = score_of(best_ious(boxes, trial), fg);
    if (s.positive < found.score.positive) break;
    found = {trial, s};
  }
  return found;
}

std::vector<ResizedBox> evenly_spaced(const std::vector<ResizedBox>& boxes, size_t count) {
  if (boxes.size() <= count) return boxes;
  std::vector<ResizedBox> picked;
  for (size_t i = 0; i < count; ++i) picked.push_back(boxes[i * boxes.size() / count]);
  return picked;
}

}  // namespace

std::vector<double> kmeans_1d(std::vector<double> values, size_t k) {
  std::sort(values.begin(), values.end());
  std::vector<double> centres(k);
  if (values.empty()) return centres;
  for (size_t c = 0; c < k; ++c)
    centres[c] = values[std::min(values.size() - 1, (2 * c + 1) * values.size() / (2 * k))];
  for (int iteration = 0; iteration < 50; ++iteration) {
    std::vector<double> sum(k, 0.0);
    std::vector<size_t> count(k, 0);
    for (const double v : values) {
      size_t nearest = 0;
      for (size_t c = 1; c < k; ++c)
        if (std::abs(v - centres[c]) < std::abs(v - centres[nearest])) nearest = c;
      sum[nearest] += v, count[nearest] += 1;
    }
    std::vector<double> next = centres;
    for (size_t c = 0; c < k; ++c)
      if (count[c]) next[c] = sum[c] / double(count[c]);
    if (next == centres) break;
    centres = next;
  }
  std::sort(centres.begin(), centres.end());
  return centres;
}

Proposal propose_anchors(const std::vector<ResizedBox>& boxes, const AnchorSet& current, const SearchOptions& options) {
  Proposal proposal{current, false, std::min(boxes.size(), options.max_boxes)};
  if (boxes.empty()) return proposal;
  const std::vector<ResizedBox> searched = evenly_spaced(boxes, options.max_boxes);
  const auto fg = static_cast<float>(options.thresholds.fg);
  const size_t per_level = current.sizes[0].size();
  Found best = best_of_shape(searched, current, per_level, fg);
  if (!options.keep_count) {
    const Found more = best_of_shape(searched, current, per_level + 1, fg);
    const int64_t needed = std::llround(std::ceil(options.min_gain_for_more_anchors * double(searched.size())));
    const int64_t gain = more.score.positive - best.score.positive;
    log::info("one more size per level would make {} more of the {} searched boxes positive ({} needed){}", gain,
              searched.size(), needed, gain >= needed ? ": proposed" : ": not worth the extra anchors");
    if (gain >= needed) best = more;
  }
  best = restore_unneeded_levels(searched, current, best, fg);
  const int64_t now = count_positive(best_ious(boxes, current), options.thresholds);
  const int64_t then = count_positive(best_ious(boxes, best.anchors), options.thresholds);
  if (then > now) proposal.anchors = best.anchors, proposal.changed = true;
  return proposal;
}

}  // namespace mrcnn::anchors
