// Any configured data set (whatever its format) as a COCO instances document, so that other
// tools (pycocotools, label viewers) can check what mrcnn reads.
#pragma once

#include <string>

#include "data/sample.h"
#include "io/json_file.h"

namespace mrcnn::data {

// The set `key` ("data.train", "data.val") of a resolved configuration, read as training reads it
// (data.on_invalid, data.keep_empty_images), as COCO: compressed-RLE masks, boxes of the masks as
// read, file_name relative to the set's images folder (LabelMe images embedded in their JSON keep
// the JSON's path), categories 1..model.num_classes-1 named by data.*.label_map, else by the names
// the format gave (YOLO's names, VIA and LabelMe class names), else by number. Throws Error when
// the set has no annotations configured.
Json export_coco_document(const Json& resolved, const std::string& key, ReadReport& report);

}  // namespace mrcnn::data
