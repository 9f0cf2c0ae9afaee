// tf.train.Example records (the TF Object Detection API's data format) decoded from the
// protobuf wire format, and the detection feature keys read into a Sample.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "data/sample.h"
#include "io/image_bands.h"
#include "io/image_file.h"

namespace mrcnn::data {

struct TfFeature {
  enum class Kind { Bytes, Float, Int64, Empty };
  Kind kind = Kind::Empty;
  std::vector<std::string> bytes;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

using TfExample = std::map<std::string, TfFeature>;

// Throws Error (prefixed with `where`) for a record that is not a well-formed Example.
TfExample parse_tf_example(std::string_view record, const std::string& where);

// The detection keys of a TF OD API record: image/height, image/width, image/filename,
// image/source_id, image/object/bbox/{xmin,xmax,ymin,ymax} (normalised), image/object/class/label,
// image/object/mask (a PNG per instance, or height*width floats per instance). Boxes become
// pixels, masks RLE. Throws Error (prefixed with `where`) for missing or inconsistent keys, and
// for a height x width that overflows or exceeds max_pixels (the image reader's limit).
Sample sample_from_tf_example(const TfExample& example, const std::string& where,
                              int64_t max_pixels = kDefaultMaxImagePixels);

// The image of a record (image/encoded, JPEG or PNG) under layout (8-bit RGB by default); Error
// (prefixed with `where`) when it cannot be decoded, has more than max_pixels pixels or does not fit.
cv::Mat tf_example_image(const TfExample& example, const std::string& where,
                         int64_t max_pixels = kDefaultMaxImagePixels, const BandLayout& layout = {});

}  // namespace mrcnn::data
