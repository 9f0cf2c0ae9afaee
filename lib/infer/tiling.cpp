#include "infer/tiling.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>

#include "core/error.h"
#include "infer/detector.h"

namespace mrcnn::infer {

namespace {

std::string shown(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

void TileOptions::check() const {
  if (size != 0 && (size < kMinTileSize || size > 65536))
    throw Error("infer.tile.size (--tile): " + std::to_string(size) + ": expected 0 (no tiling) or a tile side of " +
                std::to_string(kMinTileSize) + " to 65536 pixels");
  if (!(overlap >= 0 && overlap <= 0.9))
    throw Error("infer.tile.overlap (--tile-overlap): " + shown(overlap) +
                ": expected the share of a tile its neighbour covers too, in [0, 0.9]");
  if (!(scale > 0 && scale <= 8))
    throw Error("infer.tile.scale (--tile-scale): " + shown(scale) + ": expected a factor in (0, 8]");
  if (!(merge_threshold > 0 && merge_threshold <= 1))
    throw Error("infer.tile.merge_threshold: " + shown(merge_threshold) + ": expected a share in (0, 1]");
  if (enabled() && std::floor(static_cast<double>(size) * scale) < kMinTileSize)
    throw Error("infer.tile.size (--tile) " + std::to_string(size) + " times infer.tile.scale (--tile-scale) " +
                shown(scale) + " gives tiles under " + std::to_string(kMinTileSize) + " pixels: expected at least " +
                std::to_string(kMinTileSize));
}

std::vector<int64_t> tile_starts(int64_t length, int64_t tile, double overlap) {
  if (length <= tile) return {0};
  const int64_t stride = std::max<int64_t>(1, tile - std::llround(static_cast<double>(tile) * overlap));
  std::vector<int64_t> starts;
  for (int64_t start = 0; start + tile < length; start += stride) starts.push_back(start);
  starts.push_back(length - tile);
  return starts;
}

std::vector<TileRect> tile_grid(int64_t height, int64_t width, const TileOptions& options) {
  std::vector<TileRect> tiles;
  for (const int64_t y : tile_starts(height, options.size, options.overlap))
    for (const int64_t x : tile_starts(width, options.size, options.overlap))
      tiles.push_back({x, y, std::min(options.size, width), std::min(options.size, height)});
  return tiles;
}

namespace {

TileRect common_area(const TileRect& a, const TileRect& b) {
  const int64_t x0 = std::max(a.x0, b.x0), y0 = std::max(a.y0, b.y0);
  const int64_t x1 = std::min(a.x0 + a.width, b.x0 + b.width), y1 = std::min(a.y0 + a.height, b.y0 + b.height);
  return {x0, y0, std::max<int64_t>(0, x1 - x0), std::max<int64_t>(0, y1 - y0)};
}

bool is_empty(const TileRect& r) { return r.width == 0 || r.height == 0; }

// What the merge looks up: each region's detections (by decreasing score), the regions that
// overlap each region, and each mask's extent (to skip pairs whose masks cannot meet).
struct MergeIndex {
  std::vector<std::vector<size_t>> by_region, neighbours;
  std::vector<TileRect> extents;

  MergeIndex(const std::vector<RegionDetection>& found, const std::vector<TileRect>& regions)
      : by_region(regions.size()), neighbours(regions.size()) {
    for (size_t i = 0; i < found.size(); ++i) {
      by_region.at(found[i].region).push_back(i);
      const std::array<double, 4> box = found[i].instance.mask.bbox();
      extents.push_back({static_cast<int64_t>(box[0]), static_cast<int64_t>(box[1]), static_cast<int64_t>(box[2]),
                         static_cast<int64_t>(box[3])});
    }
    for (size_t a = 0; a < regions.size(); ++a)
      for (size_t b = 0; b < regions.size(); ++b)
        if (a != b && !is_empty(common_area(regions[a], regions[b]))) neighbours[a].push_back(b);
  }
};

// Intersection over union of two masks, both cut to the area two regions share: there both tiles
// saw the same pixels, so the two parts of one object agree even when neither tile saw it whole,
// while a detection that also covers a neighbour (a sloppy whole-image mask, two touching objects
// taken as one) is as large again there and falls short of the threshold.
double overlap_in_shared_area(const eval::Instance& a, const eval::Instance& b, const TileRect& area) {
  const auto part = [&](const eval::Rle& m) { return eval::rle_area_in_rect(m, area.x0, area.y0, area.width, area.height); };
  const int64_t part_a = part(a.mask), part_b = part(b.mask);
  if (part_a == 0 || part_b == 0) return 0;
  const int64_t both = part(eval::rle_merge({a.mask, b.mask}, /*intersect=*/true));
  return static_cast<double>(both) / static_cast<double>(part_a + part_b - both);
}

bool same_object(size_t i, size_t j, const std::vector<RegionDetection>& found, const std::vector<TileRect>& regions,
                 const MergeIndex& index, double threshold) {
  const RegionDetection& a = found[i];
  const RegionDetection& b = found[j];
  if (a.instance.label != b.instance.label || a.region == b.region) return false;
  if (is_empty(common_area(index.extents[i], index.extents[j]))) return false;
  return overlap_in_shared_area(a.instance, b.instance, common_area(regions[a.region], regions[b.region])) >=
         threshold;
}

// Detection `seed` and every detection not yet taken that matches it or, in turn, one of its
// matches, at most one per region: a region's detections are its model's own (its NMS kept them
// apart), so two of them in one group would be two objects chained into one.
std::vector<size_t> collect_group(size_t seed, const std::vector<RegionDetection>& found,
                                  const std::vector<TileRect>& regions, const MergeIndex& index,
                                  std::vector<bool>& taken, double threshold) {
  std::vector<size_t> group{seed};
  std::vector<bool> region_in_group(regions.size(), false);
  taken[seed] = true;
  region_in_group[found[seed].region] = true;
  for (size_t k = 0; k < group.size(); ++k) {
    const size_t member = group[k];
    for (const size_t region : index.neighbours[found[member].region])
      for (const size_t j : index.by_region[region])
        if (!taken[j] && !region_in_group[region] && same_object(member, j, found, regions, index, threshold)) {
          taken[j] = true;
          region_in_group[region] = true;
          group.push_back(j);
        }
  }
  return group;
}

// How near (as a share of the side) a mask must come to a tile's edge to count as cut there: the
// mask of an object a border cuts often stops a few pixels short of it.
constexpr double kCutMargin = 0.02;

// Whether a mask's extent reaches an edge of its region that lies inside the image: the border cut
// the object, and the region saw only part of it.
bool cut_by_border(const TileRect& extent, const TileRect& region, int64_t height, int64_t width) {
  const int64_t mx = std::llround(kCutMargin * static_cast<double>(region.width));
  const int64_t my = std::llround(kCutMargin * static_cast<double>(region.height));
  const bool left = region.x0 > 0 && extent.x0 <= region.x0 + mx;
  const bool top = region.y0 > 0 && extent.y0 <= region.y0 + my;
  const bool right = region.x0 + region.width < width && extent.x0 + extent.width >= region.x0 + region.width - mx;
  const bool bottom = region.y0 + region.height < height && extent.y0 + extent.height >= region.y0 + region.height - my;
  return left || top || right || bottom;
}

// The region that is the whole image (the full-image pass), if there is one.
std::optional<size_t> whole_image_region(const std::vector<TileRect>& regions, int64_t height, int64_t width) {
  for (size_t r = 0; r < regions.size(); ++r)
    if (regions[r].x0 == 0 && regions[r].y0 == 0 && regions[r].width == width && regions[r].height == height) return r;
  return std::nullopt;
}

TileRect bounding_rect(const TileRect& a, const TileRect& b) {
  const int64_t x0 = std::min(a.x0, b.x0), y0 = std::min(a.y0, b.y0);
  const int64_t x1 = std::max(a.x0 + a.width, b.x0 + b.width), y1 = std::max(a.y0 + a.height, b.y0 + b.height);
  return {x0, y0, x1 - x0, y1 - y0};
}

// A merged group of tile detections, none from the whole image, that still reaches a border inside
// the image of the tiles it came from: pieces of an object larger than they cover together. With
// the whole image also run, that pass answers for such objects and the pieces would be a false
// detection at a tile's confidence; without it they are all there is and are kept.
bool is_cut_group(const std::vector<size_t>& group, const std::vector<RegionDetection>& found,
                  const std::vector<TileRect>& regions, const MergeIndex& index, std::optional<size_t> whole) {
  if (!whole) return false;
  TileRect extent = index.extents[group.front()], covered = regions[found[group.front()].region];
  for (const size_t i : group) {
    if (found[i].region == *whole) return false;
    extent = bounding_rect(extent, index.extents[i]);
    covered = bounding_rect(covered, regions[found[i].region]);
  }
  const eval::Rle& mask = found[group.front()].instance.mask;
  return cut_by_border(extent, covered, mask.height, mask.width);
}

// The members whose masks and boxes make the merged detection: the whole-image pass when it found
// the object, else every tile's view together. Where the whole image also ran, objects that tiles
// cut are large ones, and their pieces' ragged cut edges and part-object guesses would only spoil
// the whole view by joining it.
std::vector<size_t> best_view(const std::vector<size_t>& group, const std::vector<RegionDetection>& found,
                              std::optional<size_t> whole) {
  std::vector<size_t> whole_image;
  for (const size_t i : group)
    if (whole && found[i].region == *whole) whole_image.push_back(i);
  return whole_image.empty() ? group : whole_image;
}

// One detection from a group: the seed's (highest) score and class, the view's union box and mask.
eval::Instance merged_instance(const std::vector<RegionDetection>& found, size_t seed, const std::vector<size_t>& view) {
  eval::Instance out = found[seed].instance;
  out.box = found[view.front()].instance.box;
  std::vector<eval::Rle> masks;
  for (const size_t i : view) {
    const std::array<float, 4>& box = found[i].instance.box;
    out.box = {std::min(out.box[0], box[0]), std::min(out.box[1], box[1]), std::max(out.box[2], box[2]),
               std::max(out.box[3], box[3])};
    masks.push_back(found[i].instance.mask);
  }
  out.mask = masks.size() == 1 ? masks.front() : eval::rle_merge(masks);
  return out;
}

}  // namespace

std::vector<eval::Instance> merge_region_detections(std::vector<RegionDetection> found,
                                                    const std::vector<TileRect>& regions, double threshold,
                                                    size_t max_detections) {
  std::stable_sort(found.begin(), found.end(),
                   [](const RegionDetection& a, const RegionDetection& b) { return a.instance.score > b.instance.score; });
  const MergeIndex index(found, regions);
  const std::optional<size_t> whole =
      found.empty() ? std::nullopt
                    : whole_image_region(regions, found.front().instance.mask.height, found.front().instance.mask.width);
  std::vector<bool> taken(found.size(), false);
  std::vector<eval::Instance> merged;
  // Seeds come by decreasing score and a group's score is its seed's: merged stays sorted.
  for (size_t i = 0; i < found.size() && merged.size() < max_detections; ++i) {
    if (taken[i]) continue;
    const std::vector<size_t> group = collect_group(i, found, regions, index, taken, threshold);
    if (!is_cut_group(group, found, regions, index, whole))
      merged.push_back(merged_instance(found, i, best_view(group, found, whole)));
  }
  return merged;
}

namespace {

// A tile's detection in the whole image's pixels.
eval::Instance in_image(eval::Instance instance, const TileRect& tile, int64_t height, int64_t width) {
  const auto x = static_cast<float>(tile.x0), y = static_cast<float>(tile.y0);
  instance.box = {instance.box[0] + x, instance.box[1] + y, instance.box[2] + x, instance.box[3] + y};
  instance.mask = eval::place_rle(instance.mask, height, width, tile.x0, tile.y0);
  return instance;
}

std::vector<RegionDetection> detect_tiles(Detector& detector, const cv::Mat& image, const std::vector<TileRect>& tiles,
                                          double scale, float score_threshold, int batch_size) {
  std::vector<RegionDetection> found;
  const size_t batch = static_cast<size_t>(std::max(1, batch_size));
  for (size_t start = 0; start < tiles.size(); start += batch) {
    std::vector<cv::Mat> crops;  // views into the image; the detector copies each one alone
    for (size_t k = start; k < std::min(tiles.size(), start + batch); ++k)
      crops.push_back(image(cv::Rect(static_cast<int>(tiles[k].x0), static_cast<int>(tiles[k].y0),
                                     static_cast<int>(tiles[k].width), static_cast<int>(tiles[k].height))));
    std::vector<eval::ImageDetections> detections = detector.detect(crops, score_threshold, scale);
    for (size_t k = 0; k < detections.size(); ++k)
      for (eval::Instance& instance : detections[k].instances)
        found.push_back({in_image(std::move(instance), tiles[start + k], image.rows, image.cols), start + k});
  }
  return found;
}

// A mask found on a shrunk copy of the image, scaled up to the image (bilinear on its extent).
eval::Rle enlarged_mask(const eval::Rle& small, int64_t height, int64_t width) {
  const std::array<double, 4> extent = small.bbox();
  if (extent[2] <= 0 || extent[3] <= 0) return eval::encode_rle_block(height, width, 0, 0, nullptr, 0, 0);
  std::vector<uint8_t> bits = eval::decode_rle(small);
  const cv::Mat crop = cv::Mat(static_cast<int>(small.height), static_cast<int>(small.width), CV_8UC1, bits.data())(
                           cv::Rect(static_cast<int>(extent[0]), static_cast<int>(extent[1]),
                                    static_cast<int>(extent[2]), static_cast<int>(extent[3]))) * 255;
  const double sx = static_cast<double>(width) / small.width, sy = static_cast<double>(height) / small.height;
  const auto x0 = static_cast<int64_t>(std::floor(extent[0] * sx)), y0 = static_cast<int64_t>(std::floor(extent[1] * sy));
  const int64_t x1 = std::min(width, static_cast<int64_t>(std::ceil((extent[0] + extent[2]) * sx)));
  const int64_t y1 = std::min(height, static_cast<int64_t>(std::ceil((extent[1] + extent[3]) * sy)));
  cv::Mat large;
  cv::resize(crop, large, cv::Size(static_cast<int>(x1 - x0), static_cast<int>(y1 - y0)), 0, 0, cv::INTER_LINEAR);
  const cv::Mat binary = large >= 128;
  return eval::encode_rle_block(height, width, x0, y0, binary.data, binary.rows, binary.cols);
}

// The whole image at the model's own input size, as one more region for large objects: shrunk
// before it becomes a float tensor (the memory of one model input, not of the image).
std::vector<eval::Instance> detect_whole(Detector& detector, const cv::Mat& image, float score_threshold) {
  const auto [height, width] = detector.input_size(image.rows, image.cols);
  if (height * width >= static_cast<int64_t>(image.rows) * image.cols)
    return detector.detect({image}, score_threshold).front().instances;
  cv::Mat small;
  cv::resize(image, small, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0, cv::INTER_AREA);
  std::vector<eval::Instance> found = detector.detect({small}, score_threshold, /*fixed_scale=*/1.0).front().instances;
  const float sx = static_cast<float>(image.cols) / static_cast<float>(width);
  const float sy = static_cast<float>(image.rows) / static_cast<float>(height);
  for (eval::Instance& instance : found) {
    instance.box = {instance.box[0] * sx, instance.box[1] * sy, instance.box[2] * sx, instance.box[3] * sy};
    instance.mask = enlarged_mask(instance.mask, image.rows, image.cols);
  }
  return found;
}

}  // namespace

eval::ImageDetections detect_tiled(Detector& detector, const cv::Mat& image, const TileOptions& options,
                                   float score_threshold, int batch_size) {
  const int64_t height = image.rows, width = image.cols;
  std::vector<TileRect> regions = tile_grid(height, width, options);
  if (regions.size() == 1) return detector.detect({image}, score_threshold).front();
  eval::check_mask_size(height, width);
  std::vector<RegionDetection> found = detect_tiles(detector, image, regions, options.scale, score_threshold, batch_size);
  if (options.full_image) {
    regions.push_back({0, 0, width, height});
    for (eval::Instance& instance : detect_whole(detector, image, score_threshold))
      found.push_back({std::move(instance), regions.size() - 1});
  }
  return {height, width,
          merge_region_detections(std::move(found), regions, options.merge_threshold,
                                  static_cast<size_t>(detector.max_detections()))};
}

}  // namespace mrcnn::infer
