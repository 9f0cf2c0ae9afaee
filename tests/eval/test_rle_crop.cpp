// Decoding a block of an RLE mask without the whole mask (overlays of large images): equal to
// the same block of the fully decoded mask, for any block, inside the mask or reaching past it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <random>

#include "eval/rle.h"

using namespace mrcnn::eval;

TEST_CASE("decode_rle_crop equals the block of the decoded mask", "[rle]") {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t h = 1 + static_cast<int64_t>(rng() % 40), w = 1 + static_cast<int64_t>(rng() % 40);
    std::vector<uint8_t> mask(static_cast<size_t>(h * w));
    const int density = static_cast<int>(rng() % 4);  // empty, sparse, half, dense
    for (auto& m : mask) m = static_cast<uint8_t>(rng() % 4 < static_cast<unsigned>(density));
    const Rle rle = encode_rle(mask.data(), h, w);
    const int64_t x0 = static_cast<int64_t>(rng() % (w + 5)) - 2, y0 = static_cast<int64_t>(rng() % (h + 5)) - 2;
    const int64_t cw = static_cast<int64_t>(rng() % (w + 3)), ch = static_cast<int64_t>(rng() % (h + 3));
    const std::vector<uint8_t> crop = decode_rle_crop(rle, x0, y0, cw, ch);
    REQUIRE(crop.size() == static_cast<size_t>(cw * ch));
    for (int64_t y = 0; y < ch; ++y)
      for (int64_t x = 0; x < cw; ++x) {
        const int64_t mx = x0 + x, my = y0 + y;
        const uint8_t expected = mx >= 0 && my >= 0 && mx < w && my < h ? mask[my * w + mx] : 0;
        REQUIRE(crop[y * cw + x] == expected);
      }
  }
}

TEST_CASE("decode_rle_crop of the mask's box holds every pixel of the mask", "[rle]") {
  std::vector<uint8_t> mask(30 * 20, 0);
  for (int y = 5; y < 12; ++y)
    for (int x = 3; x < 9; ++x) mask[y * 20 + x] = 1;
  const Rle rle = encode_rle(mask.data(), 30, 20);
  const auto b = rle.bbox();
  const auto crop = decode_rle_crop(rle, 3, 5, static_cast<int64_t>(b[2]), static_cast<int64_t>(b[3]));
  CHECK(b == std::array<double, 4>{3, 5, 6, 7});
  CHECK(std::count(crop.begin(), crop.end(), 1) == rle.area());
}
