#include "data/shapes.h"

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

Json write_split(const fs::path& dir, const std::string& split, int count, int size, std::mt19937_64& rng,
                 int64_t first_id) {
  fs::create_directories(dir / split);
  Json coco = {{"images", Json::array()}, {"annotations", Json::array()},
               {"categories", {{{"id", 1}, {"name", "square"}}, {{"id", 2}, {"name", "circle"}},
                               {{"id", 3}, {"name", "triangle"}}}}};
  std::uniform_int_distribution<int> n_shapes(1, 4), kind(1, 3), channel(30, 255), gray(40, 200);
  std::uniform_int_distribution<int> half_size(size / 12, size / 4), centre(size / 8, size - size / 8 - 1);
  std::normal_distribution<double> noise(0.0, 12.0);
  int64_t annotation_id = first_id * 100;
  for (int i = 0; i < count; ++i) {
    const int64_t image_id = first_id + i;
    cv::Mat image(size, size, CV_8UC3, cv::Scalar::all(gray(rng)));
    cv::Mat noise_image(size, size, CV_64FC3);
    for (auto it = noise_image.begin<cv::Vec3d>(); it != noise_image.end<cv::Vec3d>(); ++it)
      *it = cv::Vec3d(noise(rng), noise(rng), noise(rng));
    cv::Mat noisy;
    image.convertTo(noisy, CV_64FC3);
    noisy += noise_image;
    noisy.convertTo(image, CV_8UC3);
    // Later shapes cover earlier ones: keep each shape's own mask minus what covers it.
    std::vector<cv::Mat> masks;
    std::vector<int> labels;
    const int shapes = n_shapes(rng);
    for (int s = 0; s < shapes; ++s) {
      const int label = kind(rng);
      const cv::Scalar color(channel(rng), channel(rng), channel(rng));
      const int cx = centre(rng), cy = centre(rng), r = half_size(rng);
      cv::Mat mask = cv::Mat::zeros(size, size, CV_8UC1);
      if (label == 1) {
        cv::rectangle(mask, cv::Point(cx - r, cy - r), cv::Point(cx + r, cy + r), 1, cv::FILLED);
      } else if (label == 2) {
        cv::circle(mask, cv::Point(cx, cy), r, 1, cv::FILLED);
      } else {
        const std::vector<cv::Point> triangle = {{cx, cy - r}, {cx - r, cy + r}, {cx + r, cy + r}};
        cv::fillConvexPoly(mask, triangle, 1);
      }
      image.setTo(color, mask);
      for (auto& earlier : masks) earlier.setTo(0, mask);
      masks.push_back(mask);
      labels.push_back(label);
    }
    const std::string file_name = std::to_string(image_id) + ".png";
    write_image_rgb((dir / split / file_name).string(), image);
    coco["images"].push_back({{"id", image_id}, {"file_name", file_name}, {"height", size}, {"width", size}});
    for (size_t k = 0; k < masks.size(); ++k) {
      const eval::Rle rle = eval::encode_rle(masks[k].data, size, size);
      if (rle.area() < kMinVisiblePixels) continue;
      const auto b = rle.bbox();
      coco["annotations"].push_back({{"id", ++annotation_id},
                                     {"image_id", image_id},
                                     {"category_id", labels[k]},
                                     {"bbox", {b[0], b[1], b[2], b[3]}},
                                     {"area", rle.area()},
                                     {"iscrowd", 0},
                                     {"segmentation", {{"size", {size, size}}, {"counts", eval::rle_to_string(rle)}}}});
    }
  }
  return coco;
}

}  // namespace

void write_shapes_dataset(const std::string& dir, const ShapesOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) throw Error(dir + ": cannot create the folder");
  // One random stream per split: the val images stay the same whatever the number of training images.
  std::mt19937_64 train_rng(options.seed), val_rng(options.seed + 1);
  write_json_file((fs::path(dir) / "train.json").string(),
                  write_split(dir, "train", options.train_images, options.image_size, train_rng, 1));
  write_json_file((fs::path(dir) / "val.json").string(),
                  write_split(dir, "val", options.val_images, options.image_size, val_rng, 100000));
}

}  // namespace mrcnn::data
