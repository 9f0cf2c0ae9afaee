// Data set readers: COCO JSON, instance-mask PNG folders (Penn-Fudan layout), TFRecords and the
// polygon label formats (VIA, LabelMe, YOLO segmentation; data/label_formats.h), checked while
// loading under a policy (skip bad records with a count, or fail on the first).
#pragma once

#include <string>
#include <vector>

#include "data/label_map.h"
#include "data/sample.h"
#include "io/image_bands.h"
#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn::data {

enum class InvalidPolicy { Skip, Fail };

struct DatasetSpec {
  std::string format;       // coco | mask_png | tfrecord | via | labelme | yolo_seg
  std::string images;       // folder of the images
  std::string annotations;  // COCO JSON, the folder of instance-id mask PNGs, records, label files
  InvalidPolicy on_invalid = InvalidPolicy::Skip;
  int64_t num_classes = 0;  // labels must be < this (0: not checked)
  int64_t max_image_pixels = kDefaultMaxImagePixels;  // data.max_image_pixels: larger images are refused
  // After the first fields, which code and tests fill in order ({format, images, annotations, ...}).
  std::string label_map;    // data.*.label_map: class names to ids (via, labelme)
  std::string class_attribute = "class";  // via: the region attribute holding the class name
  std::string names;        // yolo_seg: the class names (data.yaml or one name a line)
  bool keep_empty_images = true;  // data.keep_empty_images: images without objects train as negatives
  BandLayout layout;              // model.input_channels, data.*.bands and pixel_max: how pixels are read

  // The set that key ("data.train", "data.val") names in a resolved configuration: its format,
  // images and annotations, under data.on_invalid and data.max_image_pixels, with labels checked
  // against model.num_classes. Throws Error when the configuration has no such set.
  static DatasetSpec from_config(const Json& config, const std::string& key);
};

// Applies the policy to a bad record: skip (counted in report) or fail (throws Error).
void invalid_record(const DatasetSpec& spec, ReadReport& report, const std::string& reason, bool image);

// Reads the annotations (not the pixels: Sample::image stays empty and is loaded by load_image).
// COCO: crowd regions are kept out of the targets, as torchvision's training does. mask_png: an
// image's mask is the PNG with the same stem (or stem + "_mask") whose pixel values are instance
// ids (0 = background); every instance gets label 1. tfrecord: TF OD API records (see
// data/tf_example.h), corrupt records skipped or fatal per the policy; images stay in the files.
// via, labelme, yolo_seg: see data/label_formats.h. Images without objects are counted in the
// report and kept (negatives) unless spec.keep_empty_images is false.
std::vector<Sample> read_dataset(const DatasetSpec& spec, ReadReport& report);

// The most shards TF's shorthand may name (train.record@N): the names are built in memory.
inline constexpr int kMaxRecordShards = 100000;

// The files of a TFRecord path: a glob (train.record-?????-of-00010) or TF's shard shorthand
// (train.record@10, throws Error beyond kMaxRecordShards), sorted.
std::vector<std::string> expand_record_paths(const std::string& pattern);

// Decodes only the sample's image under layout (no masks, no check against its annotated size);
// Error when it has more than max_pixels pixels or does not fit the layout.
void load_image_only(Sample& sample, int64_t max_pixels = kDefaultMaxImagePixels, const BandLayout& layout = {});

// The ground truth of samples as a COCO document (compressed-RLE masks, iscrowd 0), for sets
// that have no COCO file of their own (mask PNG folders, TFRecords, held-out training images).
// Categories 1..num_classes-1, named by `names` where it has them.
Json coco_document(const std::vector<Sample>& samples, int64_t num_classes, const LabelMap& names = {});

// Decodes the sample's image (and the masks of a mask_png set) into the sample.
void load_pixels(Sample& sample, const DatasetSpec& spec);

}  // namespace mrcnn::data
