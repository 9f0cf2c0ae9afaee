#include "data/datasets.h"

#include <algorithm>
#include <map>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "core/error.h"
#include "eval/coco.h"
#include "data/label_formats.h"
#include "data/tf_example.h"
#include "io/image_file.h"
#include "io/tfrecord.h"

#include <glob.h>

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
  if (empty_images)
    text += ", " + std::to_string(empty_images) +
            (empty_images_left_out ? " without objects left out (data.keep_empty_images false)" : " without objects");
  if (skipped_images || skipped_annotations)
    text += "; skipped " + std::to_string(skipped_images) + " images and " + std::to_string(skipped_annotations) +
            " annotations (first: " + (reasons.empty() ? "" : reasons.front()) + ")";
  return text;
}

DatasetSpec DatasetSpec::from_config(const Json& config, const std::string& key) {
  // "data.val" → the object at /data/val (the keys hold no '/' or '~' to escape).
  std::string pointer = "/" + key;
  std::replace(pointer.begin(), pointer.end(), '.', '/');
  const Json::json_pointer where(pointer);
  if (!config.contains(where) || !config.at(where).is_object() || !config.at(where).contains("annotations"))
    throw Error(key + ": no such data set in the configuration");
  const Json& set = config.at(where);
  const Json& data = config.at("data");
  DatasetSpec spec;
  spec.format = set.at("format").get<std::string>();
  spec.images = set.at("images").get<std::string>();
  spec.annotations = set.at("annotations").get<std::string>();
  spec.on_invalid = data.at("on_invalid") == "fail" ? InvalidPolicy::Fail : InvalidPolicy::Skip;
  spec.num_classes = config.at("model").at("num_classes").get<int64_t>();
  spec.max_image_pixels = data.at("max_image_pixels").get<int64_t>();
  // Keys added after the first configurations: absent in a hand-made partial config.
  spec.label_map = set.value("label_map", "");
  spec.class_attribute = set.value("class_attribute", "class");
  spec.names = set.value("names", "");
  spec.keep_empty_images = data.value("keep_empty_images", true);
  spec.layout = BandLayout::from_config(config, key);
  return spec;
}

void invalid_record(const DatasetSpec& spec, ReadReport& report, const std::string& reason, bool image) {
  if (spec.on_invalid == InvalidPolicy::Fail) throw Error(reason + " (data.on_invalid is fail)");
  report.skip(reason, image);
}

namespace {

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
    const std::string file = first_band_path(s.image_path, spec.layout);  // band files: the first band's
    if (image.file_name.empty() || !fs::is_regular_file(file, ec)) {
      invalid_record(spec, report, file + ": image of id " + std::to_string(id) + " is missing", true);
      continue;
    }
    if (s.height <= 0 || s.width <= 0) {
      invalid_record(spec, report, spec.annotations + ": image " + std::to_string(id) + " has no height/width", true);
      continue;
    }
    for (const eval::CocoObject* a : by_image[id]) {
      if (a->iscrowd) {
        ++report.crowd_regions;
        continue;
      }
      if (!categories.count(a->category_id) || (spec.num_classes > 0 && a->category_id >= spec.num_classes)) {
        invalid_record(spec, report, a->where + ": category " + std::to_string(a->category_id) +
                                  " is not a class of this model (ids 1.." + std::to_string(spec.num_classes - 1) + ")",
                false);
        continue;
      }
      if (!a->bbox) {
        invalid_record(spec, report, a->where + ": has no bbox", false);
        continue;
      }
      const auto& b = *a->bbox;
      // Clamped as doubles: a huge coordinate is out of float's range.
      const auto clamp = [](double v, int64_t hi) { return static_cast<float>(std::clamp<double>(v, 0, hi)); };
      const float x1 = clamp(b[0], s.width), y1 = clamp(b[1], s.height);
      const float x2 = clamp(b[0] + b[2], s.width), y2 = clamp(b[1] + b[3], s.height);
      if (!(x2 > x1 && y2 > y1)) {
        invalid_record(spec, report, a->where + ": degenerate or outside the image box " + std::to_string(b[0]) + "," +
                                  std::to_string(b[1]) + "," + std::to_string(b[2]) + "," + std::to_string(b[3]),
                false);
        continue;
      }
      eval::Rle rle;
      try {
        rle = eval::object_mask(*a, gt);
      } catch (const Error& e) {
        invalid_record(spec, report, e.what(), false);
        continue;
      }
      if (rle.height != s.height || rle.width != s.width || rle.area() == 0) {
        invalid_record(spec, report, a->where + (rle.area() == 0 ? ": empty mask" : ": mask size differs from the image"),
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
      invalid_record(spec, report, path + ": no mask PNG with the same name in " + spec.annotations, true);
      continue;
    }
    const cv::Mat ids = cv::imread(mask_path, cv::IMREAD_UNCHANGED);
    if (ids.empty() || ids.channels() != 1) {
      invalid_record(spec, report, mask_path + ": not a single-channel instance-id PNG", true);
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

// Keeps the annotations of a decoded record that can train (the COCO reader's checks).
void check_instances(Sample& s, const DatasetSpec& spec, ReadReport& report, const std::string& where) {
  Sample kept = s;
  kept.boxes.clear(), kept.labels.clear(), kept.mask_rles.clear();
  for (size_t k = 0; k < s.boxes.size(); ++k) {
    const std::string what = where + " object " + std::to_string(k);
    if (s.labels[k] < 1 || (spec.num_classes > 0 && s.labels[k] >= spec.num_classes)) {
      invalid_record(spec, report, what + ": class " + std::to_string(s.labels[k]) + " is not a class of this model (ids 1.." +
                                std::to_string(spec.num_classes - 1) + ")", false);
      continue;
    }
    auto b = s.boxes[k];
    for (int j = 0; j < 4; ++j) b[j] = std::clamp<float>(b[j], 0, j % 2 ? s.height : s.width);
    if (!(b[2] > b[0] && b[3] > b[1])) {
      invalid_record(spec, report, what + ": degenerate or outside the image box", false);
      continue;
    }
    if (k < s.mask_rles.size() && s.mask_rles[k].area() == 0) {
      invalid_record(spec, report, what + ": empty mask", false);
      continue;
    }
    kept.boxes.push_back(b);
    kept.labels.push_back(s.labels[k]);
    if (k < s.mask_rles.size()) kept.mask_rles.push_back(s.mask_rles[k]);
  }
  s = std::move(kept);
}

std::vector<Sample> read_tfrecords(const DatasetSpec& spec, ReadReport& report) {
  const std::vector<std::string> files = expand_record_paths(spec.annotations);
  if (files.empty()) throw Error(spec.annotations + ": no TFRecord files match (data.*.annotations of a tfrecord set)");
  std::vector<Sample> samples;
  for (const auto& file : files) {
    TfRecordReader reader(file);
    while (true) {
      std::optional<TfRecord> record;
      try {
        record = reader.next();
      } catch (const Error& e) {
        invalid_record(spec, report, std::string(e.what()) + "; the rest of this file is skipped", true);
        break;
      }
      if (!record) break;
      const std::string where = file + ": record at byte " + std::to_string(record->offset);
      if (!record->problem.empty()) {
        invalid_record(spec, report, record->problem, true);
        continue;
      }
      Sample s;
      try {
        s = sample_from_tf_example(parse_tf_example(record->data, where), where, spec.max_image_pixels);
      } catch (const Error& e) {
        invalid_record(spec, report, e.what(), true);
        continue;
      }
      if (!s.boxes.empty() && s.mask_rles.size() != s.boxes.size()) {
        invalid_record(spec, report, where + ": no image/object/mask (Mask R-CNN needs instance masks)", true);
        continue;
      }
      check_instances(s, spec, report, where);
      s.record_file = file;
      s.record_offset = static_cast<int64_t>(record->offset);
      if (s.image_path.empty()) s.image_path = where;
      report.annotations += static_cast<int64_t>(s.boxes.size());
      samples.push_back(std::move(s));
    }
  }
  // image/source_id numbers when they are all numeric and distinct, else 1..N in file order.
  std::set<int64_t> ids;
  for (const auto& s : samples) ids.insert(s.image_id);
  if (ids.size() != samples.size() || ids.count(0))
    for (size_t i = 0; i < samples.size(); ++i) samples[i].image_id = static_cast<int64_t>(i) + 1;
  report.images = static_cast<int64_t>(samples.size());
  return samples;
}

}  // namespace

std::vector<std::string> expand_record_paths(const std::string& pattern) {
  std::string glob_pattern = pattern;
  // TF's shard shorthand: train.record@10 = train.record-00000-of-00010 .. -00009-of-00010.
  const size_t at = pattern.rfind('@');
  if (at != std::string::npos && at + 1 < pattern.size() &&
      std::all_of(pattern.begin() + at + 1, pattern.end(), ::isdigit)) {
    const std::string digits = pattern.substr(at + 1);
    const int shards = digits.size() <= 6 ? std::stoi(digits) : kMaxRecordShards + 1;
    if (shards > kMaxRecordShards)
      throw Error(pattern.substr(0, std::min<size_t>(at, 80)) + "@" + digits.substr(0, 20) +
                  (digits.size() > 20 ? "...: " : ": ") + "too many shards; at most " +
                  std::to_string(kMaxRecordShards) + " are supported");
    std::vector<std::string> out;
    for (int i = 0; i < shards; ++i) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d", i, shards);
      out.push_back(pattern.substr(0, at) + suffix);
    }
    return out;
  }
  std::vector<std::string> out;
  glob_t matches{};
  if (::glob(glob_pattern.c_str(), 0, nullptr, &matches) == 0)
    for (size_t i = 0; i < matches.gl_pathc; ++i) out.emplace_back(matches.gl_pathv[i]);
  globfree(&matches);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

std::vector<Sample> read_format(const DatasetSpec& spec, ReadReport& report) {
  if (spec.format == "coco") return read_coco(spec, report);
  if (spec.format == "mask_png") return read_mask_pngs(spec, report);
  if (spec.format == "tfrecord") return read_tfrecords(spec, report);
  if (spec.format == "via") return read_via(spec, report);
  if (spec.format == "labelme") return read_labelme(spec, report);
  if (spec.format == "yolo_seg") return read_yolo_seg(spec, report);
  throw Error("data format '" + spec.format + "' is unknown (coco, mask_png, tfrecord, via, labelme or yolo_seg)");
}

}  // namespace

std::vector<Sample> read_dataset(const DatasetSpec& spec, ReadReport& report) {
  std::vector<Sample> samples = read_format(spec, report);
  // Negatives: every reader keeps images without objects; counted here, left out on request.
  const auto empty = [](const Sample& s) { return s.boxes.empty(); };
  report.empty_images = std::count_if(samples.begin(), samples.end(), empty);
  if (!spec.keep_empty_images && report.empty_images > 0) {
    samples.erase(std::remove_if(samples.begin(), samples.end(), empty), samples.end());
    report.empty_images_left_out = true;
  }
  report.images = static_cast<int64_t>(samples.size());
  return samples;
}

void load_image_only(Sample& sample, int64_t max_pixels, const BandLayout& layout) {
  if (!sample.embedded_image_json.empty()) {
    sample.image = labelme_embedded_image(sample.embedded_image_json, max_pixels, layout);
  } else if (!sample.record_file.empty()) {
    const std::string where = sample.record_file + ": record at byte " + std::to_string(sample.record_offset);
    sample.image = tf_example_image(parse_tf_example(read_tfrecord_at(sample.record_file, sample.record_offset), where),
                                    where, max_pixels, layout);
  } else {
    sample.image = read_image_bands(sample.image_path, layout, max_pixels);
  }
}

Json coco_document(const std::vector<Sample>& samples, int64_t num_classes, const LabelMap& names) {
  Json doc;
  doc["images"] = Json::array();
  doc["annotations"] = Json::array();
  doc["categories"] = Json::array();
  for (int64_t c = 1; c < num_classes; ++c)
    doc["categories"].push_back({{"id", c}, {"name", names.names().count(c) ? names.names().at(c) : std::to_string(c)}});
  int64_t next_id = 1;
  for (const auto& s : samples) {
    doc["images"].push_back({{"id", s.image_id}, {"height", s.height}, {"width", s.width}, {"file_name", s.image_path}});
    for (size_t k = 0; k < s.mask_rles.size(); ++k) {
      const eval::Rle& m = s.mask_rles[k];
      const auto& b = s.boxes[k];
      doc["annotations"].push_back({{"id", next_id++},
                                    {"image_id", s.image_id},
                                    {"category_id", s.labels[k]},
                                    {"bbox", {b[0], b[1], b[2] - b[0], b[3] - b[1]}},
                                    {"area", m.area()},
                                    {"iscrowd", 0},
                                    {"segmentation", {{"size", {m.height, m.width}}, {"counts", eval::rle_to_string(m)}}}});
    }
  }
  return doc;
}

void load_pixels(Sample& sample, const DatasetSpec& spec) {
  load_image_only(sample, spec.max_image_pixels, spec.layout);
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
