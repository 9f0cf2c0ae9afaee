// Tiled inference without a model: the tile grid, masks moved from a tile into the image, mask
// areas inside a rectangle, and the merge of per-tile detections of objects that borders cut.
#include <catch2/catch.hpp>

#include <functional>
#include <random>

#include "core/error.h"
#include "eval/rle.h"
#include "infer/tiling.h"

using mrcnn::eval::Instance;
using mrcnn::eval::Rle;
using mrcnn::infer::RegionDetection;
using mrcnn::infer::TileOptions;
using mrcnn::infer::TileRect;

namespace {

using PixelTest = std::function<bool(int64_t x, int64_t y)>;

// Row-major bytes of a height x width mask.
std::vector<uint8_t> raster(int64_t height, int64_t width, const PixelTest& inside) {
  std::vector<uint8_t> bits(height * width, 0);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) bits[y * width + x] = inside(x, y) ? 1 : 0;
  return bits;
}

PixelTest disk(double cx, double cy, double r) {
  return [=](int64_t x, int64_t y) { return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r; };
}

PixelTest within(const PixelTest& shape, const TileRect& t) {
  return [=](int64_t x, int64_t y) {
    return x >= t.x0 && x < t.x0 + t.width && y >= t.y0 && y < t.y0 + t.height && shape(x, y);
  };
}

// What a tile's model would report for a shape: the part of it inside the tile, in image pixels.
RegionDetection seen(int64_t height, int64_t width, const PixelTest& shape, const std::vector<TileRect>& regions,
                     size_t region, float score, int64_t label = 1) {
  const std::vector<uint8_t> bits = raster(height, width, within(shape, regions[region]));
  Instance instance;
  instance.mask = mrcnn::eval::encode_rle(bits.data(), height, width);
  const auto b = instance.mask.bbox();
  instance.box = {static_cast<float>(b[0]), static_cast<float>(b[1]), static_cast<float>(b[0] + b[2]),
                  static_cast<float>(b[1] + b[3])};
  instance.score = score;
  instance.label = label;
  return {instance, region};
}

std::vector<uint8_t> decoded(const Rle& rle) { return mrcnn::eval::decode_rle(rle); }

}  // namespace

TEST_CASE("tiles cover each side with the overlap asked for, the last one shifted inward", "[tiling]") {
  CHECK(mrcnn::infer::tile_starts(300, 512, 0.2) == std::vector<int64_t>{0});
  CHECK(mrcnn::infer::tile_starts(512, 512, 0.2) == std::vector<int64_t>{0});
  CHECK(mrcnn::infer::tile_starts(1000, 512, 0.2) == std::vector<int64_t>{0, 410, 488});
  CHECK(mrcnn::infer::tile_starts(1024, 512, 0.0) == std::vector<int64_t>{0, 512});
  for (int64_t length = 33; length < 3000; length += 37)
    for (const double overlap : {0.0, 0.2, 0.5, 0.9}) {
      const int64_t tile = 64 + length % 200;
      const std::vector<int64_t> starts = mrcnn::infer::tile_starts(length, tile, overlap);
      INFO(length << " " << tile << " " << overlap);
      CHECK(starts.front() == 0);
      CHECK(starts.back() + std::min(tile, length) == length);
      for (size_t i = 1; i < starts.size(); ++i) {
        CHECK(starts[i] > starts[i - 1]);
        CHECK(starts[i - 1] + tile - starts[i] >= std::llround(tile * overlap));  // the overlap, at least
      }
    }
}

TEST_CASE("an image smaller than a tile is one tile, the image itself", "[tiling]") {
  TileOptions options;
  options.size = 512;
  const auto small = mrcnn::infer::tile_grid(300, 400, options);
  REQUIRE(small.size() == 1);
  CHECK((small[0].x0 == 0 && small[0].y0 == 0 && small[0].width == 400 && small[0].height == 300));
  const auto strip = mrcnn::infer::tile_grid(300, 1000, options);  // tiles as tall as the image
  REQUIRE(strip.size() == 3);
  for (const TileRect& t : strip) CHECK((t.height == 300 && t.width == 512 && t.x0 + t.width <= 1000));
  CHECK(mrcnn::infer::tile_grid(1000, 1000, options).size() == 9);
}

TEST_CASE("tile options out of range name the key and the flag", "[tiling]") {
  const auto message = [](TileOptions o) {
    try {
      o.check();
    } catch (const mrcnn::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  TileOptions ok;
  ok.size = 512;
  CHECK(message(ok).empty());
  TileOptions o = ok;
  o.size = 16;
  CHECK_THAT(message(o), Catch::Contains("infer.tile.size (--tile): 16") && Catch::Contains("32"));
  o = ok;
  o.overlap = 1.5;
  CHECK_THAT(message(o), Catch::Contains("infer.tile.overlap (--tile-overlap): 1.5"));
  o = ok;
  o.scale = 0;
  CHECK_THAT(message(o), Catch::Contains("infer.tile.scale (--tile-scale): 0"));
  o = ok;
  o.scale = 0.05;  // 25-pixel model inputs
  CHECK_THAT(message(o), Catch::Contains("gives tiles under 32 pixels"));
  o = ok;
  o.size = 0;  // tiling off: the scale is not used
  o.scale = 0.05;
  CHECK(message(o).empty());
}

TEST_CASE("a tile's mask placed into the image equals the mask drawn there", "[tiling][rle]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t th = 1 + rng() % 12, tw = 1 + rng() % 12, height = th + rng() % 9, width = tw + rng() % 9;
    const int64_t x0 = rng() % (width - tw + 1), y0 = rng() % (height - th + 1);
    const int density = static_cast<int>(rng() % 4);  // empty, sparse, dense, full
    const std::vector<uint8_t> tile =
        raster(th, tw, [&](int64_t, int64_t) { return density == 3 || (density > 0 && rng() % 3 < density); });
    const std::vector<uint8_t> image = raster(height, width, [&](int64_t x, int64_t y) {
      return x >= x0 && x < x0 + tw && y >= y0 && y < y0 + th && tile[(y - y0) * tw + (x - x0)];
    });
    const Rle placed = mrcnn::eval::place_rle(mrcnn::eval::encode_rle(tile.data(), th, tw), height, width, x0, y0);
    INFO(trial);
    CHECK(placed.counts == mrcnn::eval::encode_rle(image.data(), height, width).counts);
  }
  const Rle one = mrcnn::eval::encode_rle(std::vector<uint8_t>{1}.data(), 1, 1);
  CHECK_THROWS_AS(mrcnn::eval::place_rle(one, 4, 4, 4, 0), mrcnn::Error);
}

TEST_CASE("a mask's area inside a rectangle is counted on its runs", "[tiling][rle]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t height = 1 + rng() % 15, width = 1 + rng() % 15;
    const std::vector<uint8_t> bits = raster(height, width, [&](int64_t, int64_t) { return rng() % 2 == 0; });
    const Rle rle = mrcnn::eval::encode_rle(bits.data(), height, width);
    const int64_t x0 = rng() % width, y0 = rng() % height, w = rng() % (width - x0 + 1), h = rng() % (height - y0 + 1);
    int64_t expected = 0;
    for (int64_t y = y0; y < y0 + h; ++y)
      for (int64_t x = x0; x < x0 + w; ++x) expected += bits[y * width + x];
    INFO(trial);
    CHECK(mrcnn::eval::rle_area_in_rect(rle, x0, y0, w, h) == expected);
  }
}

TEST_CASE("an object across a tile border is one detection with its whole mask", "[tiling]") {
  const int64_t height = 100, width = 180;
  const std::vector<TileRect> tiles = {{0, 0, 100, 100}, {80, 0, 100, 100}};
  const PixelTest object = disk(90, 50, 30);  // wider than the 20-pixel overlap: no tile sees it whole
  const PixelTest other = disk(160, 20, 8);   // the same class, in the right tile only
  std::vector<RegionDetection> found = {seen(height, width, object, tiles, 0, 0.6f),
                                        seen(height, width, object, tiles, 1, 0.9f),
                                        seen(height, width, other, tiles, 1, 0.8f)};
  const auto merged = mrcnn::infer::merge_region_detections(found, tiles, 0.5, 100);
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].score == 0.9f);
  CHECK(decoded(merged[0].mask) == raster(height, width, object));
  CHECK(merged[0].box == std::array<float, 4>{60, 20, 121, 81});  // the union of the halves' boxes
  CHECK(decoded(merged[1].mask) == raster(height, width, other));
}

TEST_CASE("an object where four tiles meet is one detection with its whole mask", "[tiling]") {
  const int64_t size = 180;
  std::vector<TileRect> tiles;
  for (const int64_t y : {0, 80})
    for (const int64_t x : {0, 80}) tiles.push_back({x, y, 100, 100});
  const PixelTest object = disk(90, 90, 35);
  std::vector<RegionDetection> found;
  for (size_t t = 0; t < tiles.size(); ++t) found.push_back(seen(size, size, object, tiles, t, 0.5f + 0.1f * t));
  const auto merged = mrcnn::infer::merge_region_detections(found, tiles, 0.5, 100);
  REQUIRE(merged.size() == 1);
  CHECK(merged[0].score == Approx(0.8f));
  CHECK(decoded(merged[0].mask) == raster(size, size, object));
}

TEST_CASE("duplicates in the overlap merge; touching objects and other classes do not", "[tiling]") {
  const int64_t height = 100, width = 180;
  const std::vector<TileRect> tiles = {{0, 0, 100, 100}, {80, 0, 100, 100}};
  const PixelTest small = disk(90, 20, 6);  // inside the overlap: both tiles see all of it
  const PixelTest left = [](int64_t x, int64_t y) { return x >= 70 && x < 90 && y >= 60 && y < 80; };
  const PixelTest right = [](int64_t x, int64_t y) { return x >= 90 && x < 110 && y >= 60 && y < 80; };
  std::vector<RegionDetection> found = {seen(height, width, small, tiles, 0, 0.7f),
                                        seen(height, width, small, tiles, 1, 0.75f),
                                        seen(height, width, small, tiles, 1, 0.6f, /*label=*/2),
                                        seen(height, width, left, tiles, 0, 0.9f),
                                        seen(height, width, right, tiles, 1, 0.85f)};
  const auto merged = mrcnn::infer::merge_region_detections(found, tiles, 0.5, 100);
  REQUIRE(merged.size() == 4);
  CHECK(merged[0].score == 0.9f);
  CHECK(merged[1].score == 0.85f);
  CHECK((merged[2].score == 0.75f && merged[2].label == 1));
  CHECK(decoded(merged[2].mask) == raster(height, width, small));
  CHECK((merged[3].score == 0.6f && merged[3].label == 2));
  // Detections of one tile are the model's own (its NMS kept both): never merged with each other.
  std::vector<RegionDetection> same_tile = {seen(height, width, small, tiles, 0, 0.7f),
                                            seen(height, width, small, tiles, 0, 0.6f)};
  CHECK(mrcnn::infer::merge_region_detections(same_tile, tiles, 0.5, 100).size() == 2);
}

TEST_CASE("the whole-image pass merges with the tiles; the result is capped by score", "[tiling]") {
  const int64_t height = 100, width = 180;
  const std::vector<TileRect> regions = {{0, 0, 100, 100}, {80, 0, 100, 100}, {0, 0, 180, 100}};
  const PixelTest large = [](int64_t x, int64_t y) { return x >= 10 && x < 170 && y >= 10 && y < 90; };
  std::vector<RegionDetection> found = {seen(height, width, large, regions, 0, 0.5f),
                                        seen(height, width, large, regions, 1, 0.55f),
                                        seen(height, width, large, regions, 2, 0.7f)};
  for (int k = 0; k < 5; ++k)  // small objects in a row along the top, left tile only
    found.push_back(seen(height, width, disk(8 + 12 * k, 4, 3), regions, 0, 0.1f * k, 2));
  const auto merged = mrcnn::infer::merge_region_detections(found, regions, 0.5, 4);
  REQUIRE(merged.size() == 4);
  CHECK(merged[0].score == 0.7f);
  CHECK(decoded(merged[0].mask) == raster(height, width, large));
  CHECK((merged[1].score == Approx(0.4f) && merged[3].score == Approx(0.2f)));
}

TEST_CASE("touching objects across a border stay apart, even inside a sloppy whole-image mask", "[tiling]") {
  const int64_t height = 150, width = 180;
  const std::vector<TileRect> regions = {{0, 0, 100, 150}, {80, 0, 100, 150}, {0, 0, 180, 150}};
  // Three discs in a column, each touching the next, each across the border between the tiles.
  const std::vector<PixelTest> objects = {disk(90, 25, 24), disk(90, 74, 24), disk(90, 123, 24)};
  const PixelTest all = [&](int64_t x, int64_t y) {
    return objects[0](x, y) || objects[1](x, y) || objects[2](x, y);
  };
  std::vector<RegionDetection> found = {seen(height, width, all, regions, 2, 0.95f)};  // one blob for all three
  for (size_t k = 0; k < objects.size(); ++k)
    for (size_t tile = 0; tile < 2; ++tile) found.push_back(seen(height, width, objects[k], regions, tile, 0.9f - 0.1f * k));
  const auto merged = mrcnn::infer::merge_region_detections(found, regions, 0.5, 100);
  REQUIRE(merged.size() == 4);
  CHECK(decoded(merged[0].mask) == raster(height, width, all));
  for (size_t k = 0; k < objects.size(); ++k) CHECK(decoded(merged[k + 1].mask) == raster(height, width, objects[k]));
}

TEST_CASE("a group takes one detection per region: a tile's two detections never chain", "[tiling]") {
  const int64_t height = 100, width = 180;
  const std::vector<TileRect> tiles = {{0, 0, 100, 100}, {80, 0, 100, 100}};
  // The right tile sees one object across the border; the left tile reports it twice (its NMS kept
  // both), the second mask a little larger. Both match the right tile's part in the overlap.
  const PixelTest object = disk(90, 50, 30);
  const PixelTest larger = disk(90, 50, 32);
  std::vector<RegionDetection> found = {seen(height, width, object, tiles, 1, 0.9f),
                                        seen(height, width, object, tiles, 0, 0.8f),
                                        seen(height, width, larger, tiles, 0, 0.7f)};
  const auto merged = mrcnn::infer::merge_region_detections(found, tiles, 0.5, 100);
  REQUIRE(merged.size() == 2);
  CHECK(decoded(merged[0].mask) == raster(height, width, object));
  CHECK(merged[1].score == 0.7f);
}

TEST_CASE("with the whole-image pass, a tile's cut piece that nothing matches is dropped", "[tiling]") {
  const int64_t height = 100, width = 180;
  const std::vector<TileRect> tiles = {{0, 0, 100, 100}, {80, 0, 100, 100}};
  std::vector<TileRect> regions = tiles;
  regions.push_back({0, 0, width, height});
  // A large object the left tile cuts at its right edge (x = 99): the right tile and the
  // whole-image pass missed it. An object inside the left tile, touching no inner edge, stays.
  const PixelTest cut = [](int64_t x, int64_t y) { return x >= 60 && x < 140 && y >= 30 && y < 70; };
  const PixelTest inside = disk(30, 50, 10);
  const std::vector<RegionDetection> found = {seen(height, width, cut, tiles, 0, 0.9f),
                                              seen(height, width, inside, tiles, 0, 0.8f)};
  const auto with_whole = mrcnn::infer::merge_region_detections(found, regions, 0.5, 100);
  REQUIRE(with_whole.size() == 1);
  CHECK(with_whole[0].score == 0.8f);
  // Without the whole-image pass nothing else could find that object: the piece is kept.
  CHECK(mrcnn::infer::merge_region_detections(found, tiles, 0.5, 100).size() == 2);
}
