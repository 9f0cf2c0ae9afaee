#include "eval/rle.h"

#include <algorithm>
#include <cmath>
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
  if (counts.size() < 2) return {0, 0, 0, 0};
  const int64_t m = counts.size() & ~size_t(1);  // ignore a trailing run of zeros
  int64_t xs = width, ys = height, xe = 0, ye = 0, cc = 0, xp = 0;
  for (int64_t j = 0; j < m; ++j) {
    cc += counts[j];
    const int64_t t = cc - static_cast<int64_t>(j % 2);
    const int64_t y = t % height, x = (t - y) / height;
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

std::vector<uint8_t> decode_rle(const Rle& rle) {
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

Rle rle_from_string(const std::string& s, int64_t height, int64_t width) {
  Rle rle{height, width, {}};
  size_t p = 0;
  while (p < s.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= s.size()) throw Error("compressed RLE counts end in the middle of a number");
      const int64_t c = static_cast<int64_t>(s[p]) - 48;
      if (c < 0 || c > 63) throw Error("compressed RLE counts contain an invalid character");
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= -1LL << (5 * k);
    }
    if (rle.counts.size() > 2) x += rle.counts[rle.counts.size() - 2];
    if (x < 0) throw Error("compressed RLE counts decode to a negative run");
    rle.counts.push_back(static_cast<uint32_t>(x));
  }
  return rle;
}

Rle rle_from_polygon(const std::vector<double>& xy, int64_t height, int64_t width) {
  // Transcribes maskApi.c rleFrPoly step by step: integer arithmetic and rounding as there.
  const size_t k = xy.size() / 2;
  const double scale = 5;
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) x[j] = static_cast<int>(scale * xy[j * 2 + 0] + .5);
  x[k] = x[0];
  for (size_t j = 0; j < k; ++j) y[j] = static_cast<int>(scale * xy[j * 2 + 1] + .5);
  y[k] = y[0];
  size_t m = 0;
  for (size_t j = 0; j < k; ++j) m += static_cast<size_t>(std::max(std::abs(x[j] - x[j + 1]), std::abs(y[j] - y[j + 1]))) + 1;
  std::vector<int> u(m), v(m);
  m = 0;
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    const double s = dx >= dy ? static_cast<double>(ye - ys) / dx : static_cast<double>(xe - xs) / dy;
    if (dx >= dy) {
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        u[m] = t + xs;
        v[m] = static_cast<int>(ys + s * t + .5);
        ++m;
      }
    } else {
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        v[m] = t + ys;
        u[m] = static_cast<int>(xs + s * t + .5);
        ++m;
      }
    }
  }
  // Points along the y-boundary, downsampled.
  const size_t points = m;
  std::vector<int> bx, by;
  for (size_t j = 1; j < points; ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = static_cast<double>(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / scale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > static_cast<double>(width - 1)) continue;
    double yd = static_cast<double>(v[j] < v[j - 1] ? v[j] : v[j - 1]);
    yd = (yd + .5) / scale - .5;
    if (yd < 0)
      yd = 0;
    else if (yd > static_cast<double>(height))
      yd = static_cast<double>(height);
    yd = std::ceil(yd);
    bx.push_back(static_cast<int>(xd));
    by.push_back(static_cast<int>(yd));
  }
  std::vector<uint32_t> a(bx.size() + 1);
  for (size_t j = 0; j < bx.size(); ++j)
    a[j] = static_cast<uint32_t>(bx[j] * static_cast<int>(height) + by[j]);
  a[bx.size()] = static_cast<uint32_t>(height * width);
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
    uint32_t ca = a[0], cb = b.counts[0], cc = 0;
    bool v = false, va = false, vb = false;
    size_t ia = 1, ib = 1;
    uint64_t ct = 1;
    while (ct > 0) {
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
      uint32_t ca = A.counts[0], cb = B.counts[0];
      const size_t ka = A.counts.size(), kb = B.counts.size();
      bool va = false, vb = false;
      size_t a = 1, b = 1;
      uint32_t i = 0, u = 0, ct = 1;
      while (ct > 0) {
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
