#include "eval/rle.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace mrcnn::eval {

int64_t Rle::area() const {
  int64_t a = 0;
  for (size_t i = 1; i < counts.size(); i += 2) a += counts[i];
  return a;
}

std::array<double, 4> Rle::bbox() const {
  // pycocotools rleToBbox: walks the runs in column-major order.
  if (counts.size() < 2 || height <= 0 || width <= 0) return {0, 0, 0, 0};
  const int64_t m = counts.size() & ~size_t(1);  // ignore a trailing run of zeros
  int64_t xs = width, ys = height, xe = 0, ye = 0, cc = 0, xp = 0;
  for (int64_t j = 0; j < m; ++j) {
    cc += counts[j];
    const int64_t t = cc - static_cast<int64_t>(j % 2);
    const int64_t x = t / height, y = t - x * height;  // one division: this runs for every run of every mask
    if (j % 2 == 0) {
      xp = x;
    } else if (xp < x) {
      ys = 0;
      ye = height - 1;
    }
    xs = std::min(xs, x);
    xe = std::max(xe, x);
    ys = std::min(ys, y);
    ye = std::max(ye, y);
  }
  return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe - xs + 1),
          static_cast<double>(ye - ys + 1)};
}

void check_mask_size(int64_t height, int64_t width) {
  const std::string size = "[" + std::to_string(height) + ", " + std::to_string(width) + "]";
  if (height <= 0 || width <= 0) throw Error("mask size " + size + ": height and width must be positive");
  if (height > kMaxMaskPixels / width)
    throw Error("mask size " + size + " has more than " + std::to_string(kMaxMaskPixels) + " pixels");
}

namespace {

// Throws unless runs summing to `sum` cover a height x width mask exactly.
void check_runs_cover(uint64_t sum, int64_t height, int64_t width, const char* what) {
  const uint64_t pixels = static_cast<uint64_t>(height * width);
  if (sum != pixels)
    throw Error(std::string(what) + " sum to " + std::to_string(sum) + " pixels, but size [" + std::to_string(height) +
                ", " + std::to_string(width) + "] has " + std::to_string(pixels));
}

}  // namespace

void check_rle_counts(const std::vector<uint32_t>& counts, int64_t height, int64_t width) {
  check_mask_size(height, width);
  uint64_t sum = 0;
  for (uint32_t c : counts) sum += c;
  check_runs_cover(sum, height, width, "RLE counts");
}

Rle rle_from_counts(std::vector<uint32_t> counts, int64_t height, int64_t width) {
  check_rle_counts(counts, height, width);
  return Rle{height, width, std::move(counts)};
}

namespace {

// Appends a run of value v (0/1) to counts, keeping the zeros-first alternation.
struct RunBuilder {
  std::vector<uint32_t>& counts;
  uint8_t current = 0;
  uint32_t run = 0;
  void push(uint8_t v, uint32_t n) {
    if (n == 0) return;
    if (v != current) {
      counts.push_back(run);
      run = 0;
      current = v;
    }
    run += n;
  }
  void finish() { counts.push_back(run); }
};

}  // namespace

Rle encode_rle(const uint8_t* mask, int64_t height, int64_t width) {
  Rle rle{height, width, {}};
  RunBuilder runs{rle.counts};
  for (int64_t x = 0; x < width; ++x)
    for (int64_t y = 0; y < height; ++y) runs.push(mask[y * width + x] ? 1 : 0, 1);
  runs.finish();
  return rle;
}

Rle encode_rle_block(int64_t height, int64_t width, int64_t x0, int64_t y0, const uint8_t* block, int64_t block_h,
                     int64_t block_w) {
  if (x0 < 0 || y0 < 0 || x0 + block_w > width || y0 + block_h > height)
    throw Error("encode_rle_block: block outside the image");
  Rle rle{height, width, {}};
  RunBuilder runs{rle.counts};
  runs.push(0, static_cast<uint32_t>(x0 * height));
  for (int64_t bx = 0; bx < block_w; ++bx) {
    runs.push(0, static_cast<uint32_t>(y0));
    for (int64_t by = 0; by < block_h; ++by) runs.push(block[by * block_w + bx] ? 1 : 0, 1);
    runs.push(0, static_cast<uint32_t>(height - y0 - block_h));
  }
  runs.push(0, static_cast<uint32_t>((width - x0 - block_w) * height));
  runs.finish();
  return rle;
}

Rle place_rle(const Rle& mask, int64_t height, int64_t width, int64_t x0, int64_t y0) {
  check_mask_size(height, width);
  if (x0 < 0 || y0 < 0 || x0 + mask.width > width || y0 + mask.height > height)
    throw Error("place_rle: mask outside the image");
  Rle out{height, width, {}};
  RunBuilder runs{out.counts};
  runs.push(0, static_cast<uint32_t>(x0 * height + y0));
  int64_t row = 0, column = 0, written = x0 * height + y0;
  for (size_t i = 0; i < mask.counts.size(); ++i) {
    // A run may span several columns of the mask: between them come the image's rows below and
    // above the mask (height - mask.height zeros), except after its last column.
    for (int64_t left = mask.counts[i]; left > 0 && column < mask.width;) {
      const int64_t take = std::min(left, mask.height - row);
      runs.push(i % 2, static_cast<uint32_t>(take));
      written += take;
      left -= take;
      row += take;
      if (row < mask.height) continue;
      row = 0;
      if (++column == mask.width) break;
      runs.push(0, static_cast<uint32_t>(height - mask.height));
      written += height - mask.height;
    }
  }
  runs.push(0, static_cast<uint32_t>(height * width - written));
  runs.finish();
  return out;
}

namespace {

// The pixels of the run [begin, end) (column-major positions) inside the rectangle.
int64_t run_area_in_rect(int64_t begin, int64_t end, int64_t height, int64_t x0, int64_t y0, int64_t w, int64_t h) {
  if (end <= begin) return 0;
  const int64_t first_col = begin / height, last_col = (end - 1) / height;
  int64_t total = 0;
  for (int64_t c = std::max(first_col, x0); c <= std::min(last_col, x0 + w - 1); ++c) {
    const int64_t top = std::max(c == first_col ? begin % height : 0, y0);
    const int64_t bottom = std::min(c == last_col ? (end - 1) % height + 1 : height, y0 + h);
    total += std::max<int64_t>(0, bottom - top);
  }
  return total;
}

}  // namespace

int64_t rle_area_in_rect(const Rle& mask, int64_t x0, int64_t y0, int64_t w, int64_t h) {
  int64_t pos = 0, total = 0;
  for (size_t i = 0; i < mask.counts.size(); ++i) {
    const int64_t end = pos + mask.counts[i];
    if (i % 2 == 1) total += run_area_in_rect(pos, end, mask.height, x0, y0, w, h);
    pos = end;
  }
  return total;
}

std::vector<uint8_t> decode_rle(const Rle& rle) {
  if (rle.height == 0 && rle.width == 0) return {};  // rle_merge's empty result
  check_mask_size(rle.height, rle.width);
  std::vector<uint8_t> column_major(rle.height * rle.width, 0);
  int64_t pos = 0;
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    const int64_t n = std::min<int64_t>(rle.counts[i], static_cast<int64_t>(column_major.size()) - pos);
    if (i % 2 == 1) std::fill_n(column_major.begin() + pos, n, 1);
    pos += n;
  }
  std::vector<uint8_t> mask(column_major.size());
  for (int64_t x = 0; x < rle.width; ++x)
    for (int64_t y = 0; y < rle.height; ++y) mask[y * rle.width + x] = column_major[x * rle.height + y];
  return mask;
}

std::vector<uint8_t> decode_rle_crop(const Rle& rle, int64_t x0, int64_t y0, int64_t w, int64_t h) {
  std::vector<uint8_t> crop(static_cast<size_t>(std::max<int64_t>(w, 0) * std::max<int64_t>(h, 0)), 0);
  if (crop.empty() || rle.height <= 0) return crop;
  const int64_t total = rle.height * rle.width;
  int64_t pos = 0;
  for (size_t i = 0; i < rle.counts.size() && pos < total; pos += rle.counts[i], ++i) {
    if (i % 2 == 0) continue;
    const int64_t end = std::min<int64_t>(pos + rle.counts[i], total);
    // A run of 1s crosses columns pos / height .. (end - 1) / height; only the crop's columns matter.
    for (int64_t x = std::max(pos / rle.height, x0); x <= std::min((end - 1) / rle.height, x0 + w - 1); ++x) {
      const int64_t first = std::max(pos, x * rle.height) - x * rle.height;
      const int64_t last = std::min(end, (x + 1) * rle.height) - x * rle.height;  // exclusive
      for (int64_t y = std::max(first, y0); y < std::min(last, y0 + h); ++y) crop[(y - y0) * w + (x - x0)] = 1;
    }
  }
  return crop;
}

std::string rle_to_string(const Rle& rle) {
  // maskApi.c rleToString: each count (minus the one two back, from the third on) as 5-bit
  // groups with a continuation bit, offset by 48 into printable characters.
  std::string s;
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    int64_t x = rle.counts[i];
    if (i > 2) x -= static_cast<int64_t>(rle.counts[i - 2]);
    bool more = true;
    while (more) {
      char c = static_cast<char>(x & 0x1f);
      x >>= 5;
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

namespace {

// maskApi.c rleFrString: each run of the compressed counts s, in order, to emit(run); checked as
// rle_from_counts checks runs (Error saying what is wrong).
template <typename Emit>
void decode_rle_string(const std::string& s, int64_t height, int64_t width, Emit emit) {
  check_mask_size(height, width);
  // A run of a valid mask needs at most 7 characters; 12 keep every shift inside 64 bits.
  constexpr int kMaxCharacters = 12;
  const int64_t pixels = height * width;
  int64_t sum = 0;
  uint32_t last = 0, before_last = 0;  // the runs emitted last and the one before it
  size_t emitted = 0, p = 0;
  while (p < s.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= s.size()) throw Error("compressed RLE counts end in the middle of a number");
      if (k == kMaxCharacters) throw Error("compressed RLE counts hold a number longer than 12 characters");
      const int64_t c = static_cast<int64_t>(s[p]) - 48;
      if (c < 0 || c > 63) throw Error("compressed RLE counts contain an invalid character");
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(~uint64_t{0} << (5 * k));
    }
    if (emitted > 2) x += before_last;
    if (x < 0) throw Error("compressed RLE counts decode to a negative run");
    if (x > pixels - sum)
      throw Error("compressed RLE counts sum to more than the " + std::to_string(pixels) + " pixels of size [" +
                  std::to_string(height) + ", " + std::to_string(width) + "]");
    sum += x;
    emit(static_cast<uint32_t>(x));
    before_last = last;
    last = static_cast<uint32_t>(x);
    ++emitted;
  }
  check_runs_cover(static_cast<uint64_t>(sum), height, width, "compressed RLE counts");
}

}  // namespace

Rle rle_from_string(const std::string& s, int64_t height, int64_t width) {
  Rle rle{height, width, {}};
  // One run per character without the continuation bit (0x20 above the offset of 48).
  rle.counts.reserve(static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return ((static_cast<unsigned char>(c) - 48) & 0x20) == 0; })));
  decode_rle_string(s, height, width, [&](uint32_t run) { rle.counts.push_back(run); });
  return rle;
}

void check_rle_string(const std::string& s, int64_t height, int64_t width) {
  decode_rle_string(s, height, width, [](uint32_t) {});
}

namespace {

// pycocotools' rleFrPoly keeps a point of the 5x upsampled outline only where its x (u5) is a
// pixel column's centre: that column, else -1.
int64_t crossing_column(int64_t u5, int64_t width) {
  const double xd = (static_cast<double>(u5) + .5) / 5 - .5;
  if (std::floor(xd) != xd || xd < 0 || xd > static_cast<double>(width - 1)) return -1;
  return static_cast<int64_t>(xd);
}

// The row where that column's run starts, from the lower upsampled y (v5) of the point's pair.
int64_t crossing_row(int64_t v5, int64_t height) {
  double yd = (static_cast<double>(v5) + .5) / 5 - .5;
  if (yd < 0)
    yd = 0;
  else if (yd > static_cast<double>(height))
    yd = static_cast<double>(height);
  return static_cast<int64_t>(std::ceil(yd));
}

// The column crossings of an outline as column * height + row: rleFrPoly's list before sorting.
struct Crossings {
  int64_t height, width;
  std::vector<uint32_t> at;

  void add(int64_t u5, int64_t v5) {
    const int64_t column = crossing_column(u5, width);
    if (column >= 0) at.push_back(static_cast<uint32_t>(column * height + crossing_row(v5, height)));
  }
  // fn(u5) for each column centre (u5 = 5 * column + 2) in [lo, hi]: the only x that can count.
  template <typename Fn>
  void for_each_centre(int64_t lo, int64_t hi, Fn fn) const {
    lo = std::max<int64_t>(lo, 2);
    hi = std::min<int64_t>(hi, 5 * (width - 1) + 2);
    for (int64_t u5 = lo + ((2 - lo) % 5 + 5) % 5; u5 <= hi; u5 += 5) fn(u5);
  }
};

// An edge with dx >= dy, its points (xs + t, round(ys + s * t)) for t = 0..dx: neighbours differ
// by one in x, so a pair counts only where its lower x is a column centre.
void walk_x_major(int xs, int ys, int dx, double s, Crossings& out) {
  out.for_each_centre(xs, static_cast<int64_t>(xs) + dx - 1, [&](int64_t u5) {
    const int t = static_cast<int>(u5 - xs);
    const int v0 = static_cast<int>(ys + s * t + .5), v1 = static_cast<int>(ys + s * (t + 1) + .5);
    out.add(u5, std::min(v0, v1));
  });
}

// An edge with dx < dy, its points (round(xs + s * t), ys + t) for t = 0..dy, walked backwards
// when flipped. Pairs whose lower y is at most 2 all give row 0, those from 5 * height + 2 on give
// row `height`: along such a stretch x moves monotonically by at most one per step (|s| < 1;
// exact while dy < 2^20, far beyond any image), so its crossings are the column centres between
// its end points, found without walking it. The rest, at most 5 * height pairs, one by one.
void walk_y_major(int xs, int ys, int dy, double s, bool flip, Crossings& out) {
  const auto u = [&](int64_t t) { return static_cast<int>(xs + s * static_cast<int>(t) + .5); };
  const auto stretch = [&](int64_t t0, int64_t t1, int64_t v5) {
    const int a = u(t0), b = u(t1);
    out.for_each_centre(std::min(a, b), std::max(a, b) - 1, [&](int64_t u5) { out.add(u5, v5); });
  };
  const int64_t low_end = std::min<int64_t>(dy - 1, 2 - static_cast<int64_t>(ys));
  const int64_t high_start = std::max<int64_t>(0, 5 * out.height + 2 - static_cast<int64_t>(ys));
  if (low_end >= 0) stretch(0, low_end + 1, 2);
  for (int64_t t = std::max<int64_t>(0, low_end + 1); t < std::min<int64_t>(dy, high_start); ++t) {
    const int a = u(t), b = u(t + 1);
    const int previous = flip ? b : a, current = flip ? a : b;
    if (current != previous) out.add(current < previous ? current : current - 1, ys + t);
  }
  if (high_start < dy) stretch(high_start, dy, 5 * out.height + 2);
}

}  // namespace

void check_polygon(const std::vector<double>& xy) {
  for (size_t i = 0; i < xy.size(); ++i)
    if (!(std::fabs(xy[i]) <= kMaxPolygonCoordinate)) {
      char text[120];
      std::snprintf(text, sizeof text, "coordinate %zu is %g; polygon coordinates must be finite and within +-%g pixels",
                    i, xy[i], kMaxPolygonCoordinate);
      throw Error(text);
    }
}

Rle rle_from_polygon(const std::vector<double>& xy, int64_t height, int64_t width) {
  // maskApi.c rleFrPoly, with the same integer arithmetic and rounding, but without materialising
  // the upsampled outline: only its column crossings inside the image are produced.
  check_mask_size(height, width);
  check_polygon(xy);
  const size_t k = xy.size() / 2;
  const double scale = 5;
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) x[j] = static_cast<int>(scale * xy[j * 2 + 0] + .5);
  x[k] = x[0];
  for (size_t j = 0; j < k; ++j) y[j] = static_cast<int>(scale * xy[j * 2 + 1] + .5);
  y[k] = y[0];
  Crossings crossings{height, width, {}};
  // An edge crosses a column centre at most once per 5 upsampled units of x, and only the
  // image's columns count: room for all, so that the list grows once. The span is cut to the
  // image first: an edge far outside it (hostile input) reserves nothing.
  size_t most = 1;
  const int64_t image_left = -5, image_right = 5 * width + 5;
  for (size_t j = 0; j < k; ++j) {
    const int64_t lo = std::max<int64_t>(std::min(x[j], x[j + 1]), image_left);
    const int64_t hi = std::min<int64_t>(std::max(x[j], x[j + 1]), image_right);
    most += static_cast<size_t>(hi > lo ? (hi - lo) / 5 + 1 : 1);
  }
  crossings.at.reserve(most);
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    // Consecutive edges share their end point: a pair across two edges is at one x, or (left of
    // the image, where rounding moves the point) at a negative one, and never counts.
    if (dx >= dy) {
      if (dx > 0) walk_x_major(xs, ys, dx, static_cast<double>(ye - ys) / dx, crossings);
    } else {
      walk_y_major(xs, ys, dy, static_cast<double>(xe - xs) / dy, flip, crossings);
    }
  }
  std::vector<uint32_t>& a = crossings.at;
  a.push_back(static_cast<uint32_t>(height * width));
  std::sort(a.begin(), a.end());
  uint32_t previous = 0;
  for (auto& value : a) {
    const uint32_t t = value;
    value -= previous;
    previous = t;
  }
  Rle rle{height, width, {}};
  size_t j = 0;
  rle.counts.push_back(a[j++]);
  while (j < a.size()) {
    if (a[j] > 0) {
      rle.counts.push_back(a[j++]);
    } else {
      ++j;
      if (j < a.size()) rle.counts.back() += a[j++];
    }
  }
  return rle;
}

namespace {

uint32_t first_run(const std::vector<uint32_t>& counts) { return counts.empty() ? 0 : counts[0]; }

}  // namespace

Rle rle_merge(const std::vector<Rle>& masks, bool intersect) {
  if (masks.empty()) return Rle{0, 0, {}};
  if (masks.size() == 1) return masks[0];
  int64_t h = masks[0].height, w = masks[0].width;
  std::vector<uint32_t> cnts = masks[0].counts;
  for (size_t i = 1; i < masks.size(); ++i) {
    const Rle& b = masks[i];
    if (b.height != h || b.width != w) return Rle{0, 0, {}};
    const std::vector<uint32_t> a = cnts;
    cnts.clear();
    uint32_t ca = first_run(a), cb = first_run(b.counts), cc = 0;
    bool v = false, va = false, vb = false;
    size_t ia = 1, ib = 1;
    uint64_t ct = 1;
    // Each step moves to the next run of a or b; more steps mean the runs do not sum alike.
    for (size_t steps = a.size() + b.counts.size() + 1; ct > 0 && steps > 0; --steps) {
      const uint32_t c = std::min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && ia < a.size()) {
        ca = a[ia++];
        va = !va;
      }
      ct += ca;
      cb -= c;
      if (!cb && ib < b.counts.size()) {
        cb = b.counts[ib++];
        vb = !vb;
      }
      ct += cb;
      const bool vp = v;
      v = intersect ? (va && vb) : (va || vb);
      if (v != vp || ct == 0) {
        cnts.push_back(cc);
        cc = 0;
      }
    }
  }
  return Rle{h, w, cnts};
}

std::vector<double> box_iou_matrix(const std::vector<Box>& dts, const std::vector<Box>& gts,
                                   const std::vector<uint8_t>& gt_crowd) {
  // maskApi.c bbIou, with the result laid out [d][g].
  std::vector<double> out(dts.size() * gts.size(), 0.0);
  for (size_t g = 0; g < gts.size(); ++g) {
    const Box& G = gts[g];
    const double ga = G[2] * G[3];
    const bool crowd = !gt_crowd.empty() && gt_crowd[g];
    for (size_t d = 0; d < dts.size(); ++d) {
      const Box& D = dts[d];
      const double da = D[2] * D[3];
      const double w = std::fmin(D[2] + D[0], G[2] + G[0]) - std::fmax(D[0], G[0]);
      if (w <= 0) continue;
      const double h = std::fmin(D[3] + D[1], G[3] + G[1]) - std::fmax(D[1], G[1]);
      if (h <= 0) continue;
      const double i = w * h;
      const double u = crowd ? da : da + ga - i;
      out[d * gts.size() + g] = i / u;
    }
  }
  return out;
}

std::vector<double> rle_iou_matrix(const std::vector<const Rle*>& dts, const std::vector<const Rle*>& gts,
                                   const std::vector<uint8_t>& gt_crowd) {
  // maskApi.c rleIou: the box IoU of the masks' bounding boxes first; exact counts only where it
  // is positive.
  std::vector<Box> dt_boxes, gt_boxes;
  for (const Rle* r : dts) dt_boxes.push_back(r->bbox());
  for (const Rle* r : gts) gt_boxes.push_back(r->bbox());
  std::vector<double> out = box_iou_matrix(dt_boxes, gt_boxes, gt_crowd);
  const size_t n = gts.size();
  for (size_t g = 0; g < n; ++g) {
    const bool crowd = !gt_crowd.empty() && gt_crowd[g];
    for (size_t d = 0; d < dts.size(); ++d) {
      double& o = out[d * n + g];
      if (!(o > 0)) continue;
      const Rle& A = *dts[d];
      const Rle& B = *gts[g];
      if (A.height != B.height || A.width != B.width) {
        o = -1;
        continue;
      }
      uint32_t ca = first_run(A.counts), cb = first_run(B.counts);
      const size_t ka = A.counts.size(), kb = B.counts.size();
      bool va = false, vb = false;
      size_t a = 1, b = 1;
      uint32_t i = 0, u = 0, ct = 1;
      // As in rle_merge: the step bound ends masks whose runs do not sum alike.
      for (size_t steps = ka + kb + 1; ct > 0 && steps > 0; --steps) {
        const uint32_t c = std::min(ca, cb);
        if (va || vb) {
          u += c;
          if (va && vb) i += c;
        }
        ct = 0;
        ca -= c;
        if (!ca && a < ka) {
          ca = A.counts[a++];
          va = !va;
        }
        ct += ca;
        cb -= c;
        if (!cb && b < kb) {
          cb = B.counts[b++];
          vb = !vb;
        }
        ct += cb;
      }
      if (i == 0)
        u = 1;
      else if (crowd)
        u = static_cast<uint32_t>(A.area());
      o = static_cast<double>(i) / static_cast<double>(u);
    }
  }
  return out;
}

}  // namespace mrcnn::eval
