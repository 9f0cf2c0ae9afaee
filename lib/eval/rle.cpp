#include "eval/rle.h"

#include <algorithm>

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

}  // namespace mrcnn::eval
