#include "data/datasets.h"

#include <algorithm>
#include <map>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "core/error.h"
#include "eval/coco.h"
#include "io/image_file.h"

namespace mrcnn::data {
namespace fs = std::filesystem;

void ReadReport::skip(const std::string& reason, bool image) {
  (image ? skipped_images : skipped_annotations) += 1;
  if (reasons.size() < 5) reasons.push_back(reason);
}

std::string ReadReport::summary(const std::string& source) const {
  std::string text = source + ": " + std::to_string(images) + " images, " + std::to_string(annotations) +
                     " instances used";
  if (crowd_regions) text += ", " + std::to_string(crowd_regions) + " crowd regions left out";
  if (skipped_images || skipped_annotations)
    text += "; skipped " + std::to_string(skipped_images) + " images and " + std::to_string(skipped_annotations) +
            " annotations (first: " + (reasons.empty() ? "" : reasons.front()) + ")";
  return text;
}

namespace {

// Applies the policy: skip (count it) or fail (throw).
void invalid(const DatasetSpec& spec, ReadReport& report, const std::string& reason, bool image) {
  if (spec.on_invalid == InvalidPolicy::Fail) throw Error(reason + " (data.on_invalid is fail)");
  report.skip(reason, image);
}

std::vector<Sample> read_coco(const DatasetSpec& spec, ReadReport& report) {
  const eval::CocoGroundTruth gt = eval::CocoGroundTruth::read(spec.annotations);
  std::set<int64_t> categories;
  for (const auto& c : gt.categories()) categories.insert(c.id);
  std::map<int64_t, std::vector<const eval::CocoObject*>> by_image;
  for (const auto& a : gt.annotations()) by_image[a.image_id].push_back(&a);
  std::vector<Sample> samples;
  for (const auto& [id, image] : gt.images()) {
    Sample s;
    s.image_id = id;
    s.image_path = (fs::path(spec.images) / image.file_name).string();
    s.height = image.height;
    s.width = image.width;
    std::error_code ec;
    if (image.file_name.empty() || !fs::is_regular_file(s.image_path, ec)) {
      invalid(spec, report, s.image_path + ": image of id " + std::to_string(id) + " is missing", true);
      continue;
    }
    if (s.height <= 0 || s.width <= 0) {
      invalid(spec, report, spec.annotations + ": image " + std::to_string(id) + " has no height/width", true);
      continue;
    }
    for (const eval::CocoObject* a : by_image[id]) {
      if (a->iscrowd) {
        ++report.crowd_regions;
        continue;
      }
      if (!categories.count(a->category_id) || (spec.num_classes > 0 && a->category_id >= spec.num_classes)) {
        invalid(spec, report, a->where + ": category " + std::to_string(a->category_id) +
                                  " is not a class of this model (ids 1.." + std::to_string(spec.num_classes - 1) + ")",
                false);
        continue;
      }
      if (!a->bbox) {
        invalid(spec, report, a->where + ": has no bbox", false);
        continue;
      }
      const auto& b = *a->bbox;
      const float x1 = std::clamp<float>(b[0], 0, s.width), y1 = std::clamp<float>(b[1], 0, s.height);
      const float x2 = std::clamp<float>(b[0] + b[2], 0, s.width), y2 = std::clamp<float>(b[1] + b[3], 0, s.height);
      if (!(x2 > x1 && y2 > y1)) {
        invalid(spec, report, a->where + ": degenerate or outside the image box " + std::to_string(b[0]) + "," +
                                  std::to_string(b[1]) + "," + std::to_string(b[2]) + "," + std::to_string(b[3]),
                false);
        continue;
      }
      eval::Rle rle;
      try {
        rle = eval::object_mask(*a, gt);
      } catch (const Error& e) {
        invalid(spec, report, e.what(), false);
        continue;
      }
      if (rle.height != s.height || rle.width != s.width || rle.area() == 0) {
        invalid(spec, report, a->where + (rle.area() == 0 ? ": empty mask" : ": mask size differs from the image"),
                false);
        continue;
      }
      s.boxes.push_back({x1, y1, x2, y2});
      s.labels.push_back(a->category_id);
      s.mask_rles.push_back(std::move(rle));
    }
    report.annotations += static_cast<int64_t>(s.boxes.size());
    samples.push_back(std::move(s));
  }
  report.images = static_cast<int64_t>(samples.size());
  return samples;
}

std::string find_mask_file(const std::string& folder, const std::string& stem) {
  std::error_code ec;
  for (const std::string& name : {stem + ".png", stem + "_mask.png"}) {
    const fs::path p = fs::path(folder) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

std::vector<Sample> read_mask_pngs(const DatasetSpec& spec, ReadReport& report) {
  std::error_code ec;
  if (!fs::is_directory(spec.annotations, ec))
    throw Error(spec.annotations + ": mask folder does not exist (data.*.annotations of a mask_png set)");
  std::vector<Sample> samples;
  int64_t id = 1;
  for (const auto& path : expand_image_paths({spec.images})) {
    Sample s;
    s.image_id = id++;
    s.image_path = path;
    const std::string mask_path = find_mask_file(spec.annotations, fs::path(path).stem().string());
    if (mask_path.empty()) {
      invalid(spec, report, path + ": no mask PNG with the same name in " + spec.annotations, true);
      continue;
    }
    const cv::Mat ids = cv::imread(mask_path, cv::IMREAD_UNCHANGED);
    if (ids.empty() || ids.channels() != 1) {
      invalid(spec, report, mask_path + ": not a single-channel instance-id PNG", true);
      continue;
    }
    s.height = ids.rows;
    s.width = ids.cols;
    cv::Mat ids16;
    ids.convertTo(ids16, CV_32S);
    std::set<int> instance_ids(ids16.begin<int>(), ids16.end<int>());
    instance_ids.erase(0);
    for (const int instance : instance_ids) {
      const cv::Mat mask = (ids16 == instance) / 255;
      const cv::Rect r = cv::boundingRect(mask);
      s.boxes.push_back({static_cast<float>(r.x), static_cast<float>(r.y), static_cast<float>(r.x + r.width),
                         static_cast<float>(r.y + r.height)});
      s.labels.push_back(1);
      const cv::Mat contiguous = mask.isContinuous() ? mask : mask.clone();
      s.mask_rles.push_back(eval::encode_rle(contiguous.data, s.height, s.width));
    }
    report.annotations += static_cast<int64_t>(s.boxes.size());
    samples.push_back(std::move(s));
  }
  report.images = static_cast<int64_t>(samples.size());
  return samples;
}

}  // namespace

std::vector<Sample> read_dataset(const DatasetSpec& spec, ReadReport& report) {
  if (spec.format == "coco") return read_coco(spec, report);
  if (spec.format == "mask_png") return read_mask_pngs(spec, report);
  throw Error("data format '" + spec.format + "' is not readable yet (tfrecord arrives with issue #7)");
}

void load_pixels(Sample& sample, const DatasetSpec& spec) {
  (void)spec;
  sample.image = read_image_rgb(sample.image_path);
  if (sample.image.rows != sample.height || sample.image.cols != sample.width)
    throw Error(sample.image_path + ": image is " + std::to_string(sample.image.cols) + "x" +
                std::to_string(sample.image.rows) + " but its annotations say " + std::to_string(sample.width) + "x" +
                std::to_string(sample.height));
  sample.masks.clear();
  for (const auto& rle : sample.mask_rles) {
    std::vector<uint8_t> bits = eval::decode_rle(rle);
    sample.masks.push_back(cv::Mat(static_cast<int>(rle.height), static_cast<int>(rle.width), CV_8UC1, bits.data()).clone());
  }
}

}  // namespace mrcnn::data
