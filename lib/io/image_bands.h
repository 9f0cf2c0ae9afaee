// Images with any number of bands and bit depths: which channels feed the model, in what order,
// and the value that means full scale (data.*.bands, data.*.pixel_max, model.input_channels).
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/image_file.h"
#include "io/json_file.h"

namespace mrcnn {

struct BandLayout {
  int64_t channels = 3;    // model.input_channels: the bands the model takes
  std::vector<int> bands;  // 0-based channels of the decoded image in file order (R, G, B, A/extra); empty: all
  double pixel_max = 0;    // full scale; 0: 255 for 8-bit images, others refused
  std::string band_files;  // "{stem}_B{band}.tif": each band a file of its own; empty: channels of one file
  std::string set_key = "data.train";  // names the keys in messages; empty: a tool's flags (--bands)

  // How a message names one of the layout's keys: data.train.pixel_max, or --pixel-max.
  std::string key(const std::string& name) const;

  // 8-bit RGB as before the layouts: decoded to CV_8UC3, the model divides by 255.
  bool is_plain_rgb() const {
    return channels == 3 && bands.empty() && band_files.empty() && (pixel_max == 0 || pixel_max == 255);
  }

  // The layout of set_key ("data.train", "data.val") in a resolved configuration; bands and
  // pixel_max a set leaves unset (empty, 0) are data.train's, and keys a partial (hand-made or
  // older) configuration lacks take their defaults.
  static BandLayout from_config(const Json& resolved, const std::string& set_key);
};

// The image as the model takes it: for the plain RGB layout an 8-bit image stays CV_8UC3 RGB
// (exactly decode_image_rgb, but that TIFFs are read by io/tiff_file); anything else becomes CV_32FC(channels), each selected band as
// value * 255 / pixel_max: on the 8-bit scale, so that the model divides every image by 255 the
// same way (on any device), and a 16-bit v * 257 with pixel_max 65535 is exactly the 8-bit v.
// Throws Error naming source (and the key to set) for an undecodable image, a 16-bit or float
// image without a declared pixel_max, a band index the image does not have, or a band count other
// than the model's.
cv::Mat decode_image_bands(std::string_view bytes, const std::string& source, const BandLayout& layout,
                           int64_t max_pixels = kDefaultMaxImagePixels);

// decode_image_bands of a file's bytes; with layout.band_files, of the single-band files the
// pattern names next to path (path itself need not exist), all of one size.
cv::Mat read_image_bands(const std::string& path, const BandLayout& layout,
                         int64_t max_pixels = kDefaultMaxImagePixels);

// The file holding the first band of the image labelled as path: path itself, or with band_files
// the first band's file (what a reader checks is there).
std::string first_band_path(const std::string& path, const BandLayout& layout);

// An 8-bit RGB view of a pipeline image for drawing: `view` names its channels to draw as R, G, B
// (three) or as gray (one); empty: CV_8UC3 as it is, otherwise channels 0-2 as RGB (the first as
// gray below 3 channels). Saturated to 0-255. Throws Error naming view_key for a channel the
// image does not have or a view of another length.
cv::Mat display_rgb(const cv::Mat& image, const std::vector<int>& view = {},
                    const std::string& view_key = "infer.overlay_bands");

// Which bands of an image file a drawing shows (mrcnn-visualize --bands, --pixel-max): bands in
// file order, three as R, G, B or one as gray (empty: 0-2, or 0 as gray for 1-2 band images), and
// the value that means full scale (0: 255 for 8-bit images, others refused).
struct BandView {
  std::vector<int> bands;
  double pixel_max = 0;
};

// An image file drawn as 8-bit RGB through `view`. With the default view an 8-bit JPEG/PNG/...
// reads exactly as read_image_rgb (EXIF orientation applied); TIFFs go to io/tiff_file.
cv::Mat read_image_view(const std::string& path, const BandView& view, int64_t max_pixels = kDefaultMaxImagePixels);

}  // namespace mrcnn
