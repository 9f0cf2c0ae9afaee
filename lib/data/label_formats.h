// Readers of the label formats of annotation tools: VGG Image Annotator (via), LabelMe (labelme)
// and YOLO segmentation text files (yolo_seg). Each reads polygons, rasterises them as pycocotools
// does (data/polygon_sets.h) and applies the skip/fail policy of the other readers.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "data/datasets.h"

namespace mrcnn::data {

// annotations: a VIA JSON, either a VIA 2 project (_via_img_metadata) or a region export (a dict
// of {filename, size, regions} keyed by filename + size, regions a list or a {"0": ...} dict).
// Shapes polygon, rect, circle, ellipse (the last two as polygons, see ellipse_polygon); the class
// is the region attribute spec.class_attribute, named as in spec.label_map (else the names found,
// sorted, from 1). A region without it is class 1 when the model has one class, else invalid.
// Images are spec.images / filename.
std::vector<Sample> read_via(const DatasetSpec& spec, ReadReport& report);

// annotations: a folder of LabelMe JSON files, one per image. Shapes polygon, rectangle, circle
// (centre and a point on the circle); shapes with the same label and group_id are one instance
// (the union of their masks). The image is imagePath relative to the JSON, else spec.images /
// its file name, else the JSON's embedded imageData (decoded when the image is loaded).
std::vector<Sample> read_labelme(const DatasetSpec& spec, ReadReport& report);

// images: a folder of images; annotations: a folder of <image stem>.txt files, a line per object
// "class x1 y1 x2 y2 ..." (normalised to 0..1). Class index k is label k + 1. spec.names (a data.yaml
// with a names list or {index: name} map, or a text file of a name a line) names and bounds the
// classes. An image without a label file is a negative image (as Ultralytics treats it).
std::vector<Sample> read_yolo_seg(const DatasetSpec& spec, ReadReport& report);

// The class names of a YOLO names file (data.yaml's names: or one name a line), index order.
std::vector<std::string> read_yolo_names(const std::string& path);

// The image embedded (base64 imageData) in a LabelMe JSON, decoded under layout (8-bit RGB by
// default); Error naming the file.
cv::Mat labelme_embedded_image(const std::string& json_path, int64_t max_pixels, const BandLayout& layout = {});

}  // namespace mrcnn::data
