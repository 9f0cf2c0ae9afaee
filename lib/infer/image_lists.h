// The images an inference run goes over, with the ids its results carry: image files, the images
// of a COCO file, or a configured data set in any format (the dataset-to-results path of
// mrcnn-infer --dataset and mrcnn-eval --config). No libtorch: mrcnn-eval uses it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "io/json_file.h"

namespace mrcnn::infer {

struct InferenceImage {
  int64_t id = 0;
  std::string path;
  std::string file_name;  // written into each record when non-empty
  std::string record_file;    // TFRecord data sets: the image is in this file...
  int64_t record_offset = -1; // ...in the record at this byte offset
  std::string embedded_image_json;  // LabelMe sets: the JSON whose imageData holds the image
};

// Images 1..N in sorted path order, from files, folders and globs (file_name = the path).
std::vector<InferenceImage> images_from_paths(const std::vector<std::string>& inputs);

// The images of a COCO annotation file, with their ids, under image_root.
std::vector<InferenceImage> images_from_coco(const std::string& annotation_file, const std::string& image_root);

// The images of a configured data set in any format (data.*.format), with the image
// ids its reader gives them (the ids of data::coco_document for the same set).
std::vector<InferenceImage> images_from_dataset(const data::DatasetSpec& spec);

// The configuration's data.<name> set ("train", "val") as inference reads it: broken records are
// skipped whatever data.on_invalid says (inference scores what it can read), images with more than
// max_image_pixels pixels refused.
data::DatasetSpec inference_dataset(const Json& config, const std::string& name, int64_t max_image_pixels);

}  // namespace mrcnn::infer
