#include "data/shapes.h"

#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <random>

#include "core/error.h"
#include "eval/rle.h"
#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn::data {
namespace fs = std::filesystem;

namespace {

// Below this many visible pixels an occluded shape is left out of the annotations.
constexpr int kMinVisiblePixels = 24;

// The small-object variant: shape counts per kSmallReferenceSide^2 pixels, half-sizes (sides of
// 2r + 1 = 7 to 39 px) and the share of shapes placed against another one.
constexpr double kSmallReferenceSide = 2048;
constexpr int kSmallFewestShapes = 50, kSmallMostShapes = 200;
constexpr int kSmallMinRadius = 3, kSmallMaxRadius = 19;
constexpr double kTouchingShare = 0.3;
constexpr int kPlacementTries = 50;
constexpr int kHiddenLabel = 4;  // the hidden_band variant's class, seen only in the 4th band

// One shape as annotated: its class and its mask over the `where` rectangle of the image.
struct Instance {
  int label = 0;
  cv::Rect where;
  cv::Mat mask;  // CV_8U 0/1, where.size()
};

// The random draws of one split, in one place because they outlive an image: normal_distribution
// keeps every second value it makes for the next call, and the default set's bytes depend on that.
struct SplitDraws {
  explicit SplitDraws(std::mt19937_64& generator) : rng(generator) {}
  std::mt19937_64& rng;
  std::uniform_int_distribution<int> kind{1, 3}, channel{30, 255}, gray{40, 200};
  std::normal_distribution<double> noise{0.0, 12.0};

  cv::Scalar color() { return cv::Scalar(channel(rng), channel(rng), channel(rng)); }
};

// A uniform gray image with Gaussian noise on every channel.
cv::Mat noisy_background(int size, SplitDraws& draws) {
  cv::Mat image(size, size, CV_8UC3, cv::Scalar::all(draws.gray(draws.rng)));
  cv::Mat noise_image(size, size, CV_64FC3);
  for (auto it = noise_image.begin<cv::Vec3d>(); it != noise_image.end<cv::Vec3d>(); ++it)
    *it = cv::Vec3d(draws.noise(draws.rng), draws.noise(draws.rng), draws.noise(draws.rng));
  cv::Mat noisy;
  image.convertTo(noisy, CV_64FC3);
  noisy += noise_image;
  noisy.convertTo(image, CV_8UC3);
  return image;
}

// Sets the pixels of shape `label` (1 square, 2 circle, 3 triangle) of half-size r centred at c.
void draw_shape(cv::Mat& mask, int label, cv::Point c, int r) {
  if (label == 1) {
    cv::rectangle(mask, cv::Point(c.x - r, c.y - r), cv::Point(c.x + r, c.y + r), 1, cv::FILLED);
  } else if (label == 2) {
    cv::circle(mask, c, r, 1, cv::FILLED);
  } else {
    const std::vector<cv::Point> triangle = {{c.x, c.y - r}, {c.x - r, c.y + r}, {c.x + r, c.y + r}};
    cv::fillConvexPoly(mask, triangle, 1);
  }
}

// The default set: 1-4 large shapes; later shapes cover earlier ones, so each keeps its own mask
// minus what covers it.
std::vector<Instance> overlapping_shapes(cv::Mat& image, SplitDraws& draws) {
  const int size = image.rows;
  std::uniform_int_distribution<int> n_shapes(1, 4), half_size(size / 12, size / 4), centre(size / 8, size - size / 8 - 1);
  std::vector<Instance> shapes;
  const int count = n_shapes(draws.rng);
  for (int s = 0; s < count; ++s) {
    const int label = draws.kind(draws.rng);
    const cv::Scalar color = draws.color();
    const int cx = centre(draws.rng), cy = centre(draws.rng), r = half_size(draws.rng);
    cv::Mat mask = cv::Mat::zeros(size, size, CV_8UC1);
    draw_shape(mask, label, cv::Point(cx, cy), r);
    image.setTo(color, mask);
    for (auto& earlier : shapes) earlier.mask.setTo(0, mask);
    shapes.push_back({label, cv::Rect(0, 0, size, size), mask});
  }
  return shapes;
}

// True when `shape` lies inside the image and covers no pixel already `occupied`.
bool fits(const Instance& shape, const cv::Mat& occupied) {
  if ((shape.where & cv::Rect(0, 0, occupied.cols, occupied.rows)) != shape.where) return false;
  cv::Mat overlap;
  cv::bitwise_and(occupied(shape.where), shape.mask, overlap);
  return cv::countNonZero(overlap) == 0;
}

// Moves `shape` (centre at where.tl + r) to centre c.
void move_to(Instance& shape, cv::Point c) {
  const int r = shape.where.width / 2;
  shape.where.x = c.x - r;
  shape.where.y = c.y - r;
}

// Places `shape` at a random free spot; false when none was found in kPlacementTries.
bool place_free(Instance& shape, const cv::Mat& occupied, std::mt19937_64& rng) {
  const int r = shape.where.width / 2;
  std::uniform_int_distribution<int> centre(r, occupied.rows - 1 - r);
  for (int attempt = 0; attempt < kPlacementTries; ++attempt) {
    move_to(shape, cv::Point(centre(rng), centre(rng)));
    if (fits(shape, occupied)) return true;
  }
  return false;
}

// Places `shape` against `neighbour`: from a random direction, as close as it goes without
// overlapping (so the two touch, at most a pixel apart); false when the way in is blocked.
bool place_touching(Instance& shape, const Instance& neighbour, const cv::Mat& occupied, std::mt19937_64& rng) {
  const double angle = std::uniform_real_distribution<double>(0, 2 * M_PI)(rng);
  const cv::Point2d from = (neighbour.where.tl() + neighbour.where.br()) * 0.5;
  bool found = false;
  for (int distance = (neighbour.where.width + shape.where.width) / 2 + 2; distance >= 0; --distance) {
    const cv::Point centre(static_cast<int>(std::lround(from.x + distance * std::cos(angle))),
                           static_cast<int>(std::lround(from.y + distance * std::sin(angle))));
    const cv::Rect before = shape.where;
    move_to(shape, centre);
    if (!fits(shape, occupied)) {
      shape.where = before;
      return found;
    }
    found = true;
  }
  return found;
}

// The small-object set: many small shapes, none overlapping, some touching.
std::vector<Instance> small_shapes(cv::Mat& image, SplitDraws& draws) {
  const int size = image.rows;
  const double density = size * static_cast<double>(size) / (kSmallReferenceSide * kSmallReferenceSide);
  const int fewest = std::max(1, static_cast<int>(std::ceil(kSmallFewestShapes * density)));
  std::uniform_int_distribution<int> n_shapes(fewest, std::max(fewest, static_cast<int>(kSmallMostShapes * density)));
  std::uniform_int_distribution<int> half_size(kSmallMinRadius, kSmallMaxRadius);
  std::bernoulli_distribution touching(kTouchingShare);
  cv::Mat occupied = cv::Mat::zeros(size, size, CV_8UC1);
  std::vector<Instance> shapes;
  const int count = n_shapes(draws.rng);
  for (int s = 0; s < count; ++s) {
    const int label = draws.kind(draws.rng), r = half_size(draws.rng);
    const cv::Scalar color = draws.color();
    Instance shape{label, cv::Rect(0, 0, 2 * r + 1, 2 * r + 1), cv::Mat::zeros(2 * r + 1, 2 * r + 1, CV_8UC1)};
    draw_shape(shape.mask, label, cv::Point(r, r), r);
    bool placed = false;
    if (!shapes.empty() && touching(draws.rng)) {
      const size_t neighbour = std::uniform_int_distribution<size_t>(0, shapes.size() - 1)(draws.rng);
      placed = place_touching(shape, shapes[neighbour], occupied, draws.rng);
    }
    if (!placed && !place_free(shape, occupied, draws.rng)) continue;
    image(shape.where).setTo(color, shape.mask);
    occupied(shape.where).setTo(1, shape.mask);
    shapes.push_back(std::move(shape));
  }
  return shapes;
}

// The hidden_band variant: a 4th band, dark and noisy, where one shape of class 4 is bright; the
// image becomes RGBA. Drawn after the RGB shapes, from the same stream.
void add_hidden_band(cv::Mat& image, std::vector<Instance>& shapes, SplitDraws& draws) {
  const int size = image.rows;
  std::uniform_int_distribution<int> half_size(size / 10, size / 5), centre(size / 5, size - size / 5 - 1);
  cv::Mat band(size, size, CV_8UC1);
  for (auto it = band.begin<uchar>(); it != band.end<uchar>(); ++it)
    *it = cv::saturate_cast<uchar>(60 + draws.noise(draws.rng));
  cv::Mat mask = cv::Mat::zeros(size, size, CV_8UC1);
  draw_shape(mask, draws.kind(draws.rng), cv::Point(centre(draws.rng), centre(draws.rng)), half_size(draws.rng));
  band.setTo(200, mask);
  shapes.push_back({kHiddenLabel, cv::Rect(0, 0, size, size), mask});
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  planes.push_back(band);
  cv::merge(planes, image);
}

// Appends the image's shapes that remain visible enough to the COCO annotations.
void annotate(Json& coco, int64_t image_id, int size, const std::vector<Instance>& shapes, int64_t& annotation_id) {
  for (const Instance& shape : shapes) {
    const cv::Mat block = shape.mask.isContinuous() ? shape.mask : shape.mask.clone();
    const eval::Rle rle = eval::encode_rle_block(size, size, shape.where.x, shape.where.y, block.data,
                                                 shape.where.height, shape.where.width);
    if (rle.area() < kMinVisiblePixels) continue;
    const auto b = rle.bbox();
    coco["annotations"].push_back({{"id", ++annotation_id},
                                   {"image_id", image_id},
                                   {"category_id", shape.label},
                                   {"bbox", {b[0], b[1], b[2], b[3]}},
                                   {"area", rle.area()},
                                   {"iscrowd", 0},
                                   {"segmentation", {{"size", {size, size}}, {"counts", eval::rle_to_string(rle)}}}});
  }
}

Json write_split(const fs::path& dir, const std::string& split, int count, const ShapesOptions& options,
                 std::mt19937_64& rng, int64_t first_id) {
  fs::create_directories(dir / split);
  Json coco = {{"images", Json::array()}, {"annotations", Json::array()},
               {"categories", {{{"id", 1}, {"name", "square"}}, {{"id", 2}, {"name", "circle"}},
                               {{"id", 3}, {"name", "triangle"}}}}};
  if (options.hidden_band) coco["categories"].push_back({{"id", kHiddenLabel}, {"name", "hidden"}});
  const int size = options.image_size;
  SplitDraws draws(rng);
  int64_t annotation_id = first_id * 100;
  for (int i = 0; i < count; ++i) {
    const int64_t image_id = first_id + i;
    cv::Mat image = noisy_background(size, draws);
    std::vector<Instance> shapes =
        options.small_objects ? small_shapes(image, draws) : overlapping_shapes(image, draws);
    if (options.hidden_band) add_hidden_band(image, shapes, draws);
    const std::string file_name = std::to_string(image_id) + ".png";
    write_image_rgb((dir / split / file_name).string(), image);
    coco["images"].push_back({{"id", image_id}, {"file_name", file_name}, {"height", size}, {"width", size}});
    annotate(coco, image_id, size, shapes, annotation_id);
  }
  return coco;
}

}  // namespace

ShapesOptions ShapesOptions::small_objects_defaults() {
  ShapesOptions options;
  options.small_objects = true;
  options.train_images = 32;  // 4000 shapes; a noisy 2048 px PNG takes 9.6 MB
  options.val_images = 8;
  options.image_size = 2048;
  return options;
}

void write_shapes_dataset(const std::string& dir, const ShapesOptions& options) {
  if (options.small_objects && options.image_size < kMinSmallShapesSize)
    throw Error("small shapes need images of at least " + std::to_string(kMinSmallShapesSize) +
                " pixels a side (their largest are 39 px), not " + std::to_string(options.image_size));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) throw Error(dir + ": cannot create the folder");
  // One random stream per split: the val images stay the same whatever the number of training images.
  std::mt19937_64 train_rng(options.seed), val_rng(options.seed + 1);
  write_json_file((fs::path(dir) / "train.json").string(),
                  write_split(dir, "train", options.train_images, options, train_rng, 1));
  write_json_file((fs::path(dir) / "val.json").string(),
                  write_split(dir, "val", options.val_images, options, val_rng, 100000));
}

}  // namespace mrcnn::data
