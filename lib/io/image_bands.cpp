#include "io/image_bands.h"

#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/tiff_file.h"

namespace mrcnn {
namespace fs = std::filesystem;
namespace {

std::string depth_name(int depth) {
  switch (depth) {
    case CV_8U: return "8-bit";
    case CV_16U: return "16-bit";
    case CV_32F: return "32-bit float";
    case CV_8S: return "8-bit signed";
    case CV_16S: return "16-bit signed";
    case CV_32S: return "32-bit signed";
    default: return "depth " + std::to_string(depth);
  }
}

// OpenCV gives colour as BGR(A); bands are numbered in the file's order (R, G, B, A or extra).
cv::Mat in_file_order(const cv::Mat& decoded) {
  cv::Mat ordered;
  if (decoded.channels() == 3) cv::cvtColor(decoded, ordered, cv::COLOR_BGR2RGB);
  else if (decoded.channels() == 4) cv::cvtColor(decoded, ordered, cv::COLOR_BGRA2RGBA);
  else ordered = decoded;
  return ordered;
}

// A TIFF as OpenCV's IMREAD_COLOR gives the plain layout: gray (with or without alpha) repeated,
// a 4th band dropped; 5 or more bands are left for the band-count check.
cv::Mat plain_rgb(const cv::Mat& tiff) {
  if (tiff.channels() == 3 || tiff.channels() > 4) return tiff;
  std::vector<cv::Mat> planes;
  cv::split(tiff, planes);
  planes.resize(std::min(tiff.channels(), 3));
  if (tiff.channels() <= 2) planes = {planes[0], planes[0], planes[0]};
  cv::Mat merged;
  cv::merge(planes, merged);
  return merged;
}

// The decoded image, its bands in file order, its depth kept. TIFFs go to our own reader
// (io/tiff_file) whenever it reads them, so that a TIFF gives the same bands on every build: the
// portable kit's OpenCV has no TIFF codec, and the system's (libtiff) misreads files of 2 or 5+
// samples as gray and multiplies the colours of 8-bit 4-sample files by the 4th band as if it
// were alpha. TIFFs it leaves aside (JPEG-compressed, palette, bilevel...) go to OpenCV as before.
cv::Mat decoded_in_file_order(std::string_view bytes, const std::string& source, const BandLayout& layout,
                              int64_t max_pixels) {
  const int flags = layout.is_plain_rgb() ? cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH : cv::IMREAD_UNCHANGED;
  if (!is_tiff(bytes)) return in_file_order(decode_image_flags(bytes, source, flags, max_pixels));
  try {
    const cv::Mat tiff = decode_tiff(bytes, source, max_pixels);
    return layout.is_plain_rgb() ? plain_rgb(tiff) : tiff;
  } catch (const TiffUnsupported& unsupported) {
    try {
      return in_file_order(decode_image_flags(bytes, source, flags, max_pixels));
    } catch (const Error&) {
      throw Error(std::string(unsupported.what()) + ", nor by OpenCV");
    }
  }
}

// The full-scale value of an image of this depth: the declared one, or 255 for 8-bit images.
double full_scale(int depth, const BandLayout& layout, const std::string& source) {
  if (layout.pixel_max > 0) return layout.pixel_max;
  if (depth == CV_8U) return 255;
  throw Error(source + ": " + depth_name(depth) + " image, but " + layout.key("pixel_max") +
              " is not set (the value that means full scale, e.g. 65535, or 4095 for 12-bit data)");
}

// The layout's bands (all when it names none), checked against the image and the model.
std::vector<cv::Mat> selected_bands(const cv::Mat& image, const BandLayout& layout, const std::string& source) {
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  if (layout.bands.empty()) {
    if (static_cast<int64_t>(planes.size()) != layout.channels)
      throw Error(source + ": image has " + std::to_string(planes.size()) + " bands, the model takes " +
                  std::to_string(layout.channels) + " (model.input_channels; " + layout.key("bands") +
                  " picks and orders them)");
    return planes;
  }
  std::vector<cv::Mat> picked;
  for (const int band : layout.bands) {
    if (band < 0 || band >= static_cast<int>(planes.size()))
      throw Error(source + ": " + layout.key("bands") + " names band " + std::to_string(band) + ", the image has " +
                  std::to_string(planes.size()) + " bands (0-" + std::to_string(planes.size() - 1) + ")");
    picked.push_back(planes[band]);
  }
  return picked;
}

// value * 255 / full_scale in double, rounded once to float: 16-bit v * 257 with 65535 (or
// v * 16 with 4080) gives exactly v, as the 8-bit path has it.
cv::Mat scaled_plane(const cv::Mat& plane, double full_scale) {
  cv::Mat wide, out(plane.size(), CV_32F);
  plane.convertTo(wide, CV_64F);
  for (int y = 0; y < wide.rows; ++y) {
    const double* in = wide.ptr<double>(y);
    float* to = out.ptr<float>(y);
    for (int x = 0; x < wide.cols; ++x) to[x] = static_cast<float>(in[x] * 255.0 / full_scale);
  }
  return out;
}

cv::Mat scaled_bands(const cv::Mat& image, const BandLayout& layout, const std::string& source) {
  const double scale = full_scale(image.depth(), layout, source);
  std::vector<cv::Mat> planes = selected_bands(image, layout, source);
  for (cv::Mat& plane : planes) plane = scaled_plane(plane, scale);
  cv::Mat merged;
  cv::merge(planes, merged);
  return merged;
}

// pattern with every {name} replaced by value.
std::string substituted(std::string pattern, const std::string& name, const std::string& value) {
  for (size_t at = pattern.find(name); at != std::string::npos; at = pattern.find(name, at + value.size()))
    pattern.replace(at, name.size(), value);
  return pattern;
}

// The file of one band: the pattern next to the labelled file, {stem} its name without extension.
std::string band_file(const std::string& labelled, const std::string& pattern, int band) {
  const fs::path path(labelled);
  const std::string name = substituted(substituted(pattern, "{stem}", path.stem().string()), "{band}",
                                       std::to_string(band));
  return (path.parent_path() / name).string();
}

// The bands of layout.band_files, each a single-band file of the first one's size, scaled.
cv::Mat read_band_files(const std::string& labelled, const BandLayout& layout, int64_t max_pixels) {
  std::vector<cv::Mat> planes;
  for (const int band : layout.bands) {
    const std::string file = band_file(labelled, layout.band_files, band);
    const cv::Mat plane = decoded_in_file_order(read_text_file(file), file, layout, max_pixels);
    if (plane.channels() != 1)
      throw Error(file + ": a band file holds one band, this one has " + std::to_string(plane.channels()) + " (" +
                  layout.key("band_files") + ")");
    if (!planes.empty() && plane.size() != planes.front().size())
      throw Error(file + ": band is " + std::to_string(plane.cols) + "x" + std::to_string(plane.rows) +
                  ", the image's first band " + std::to_string(planes.front().cols) + "x" +
                  std::to_string(planes.front().rows));
    planes.push_back(scaled_plane(plane, full_scale(plane.depth(), layout, file)));
  }
  cv::Mat merged;
  cv::merge(planes, merged);
  return merged;
}

}  // namespace

BandLayout BandLayout::from_config(const Json& resolved, const std::string& set_key) {
  BandLayout layout;
  layout.set_key = set_key;
  const Json& model = resolved.at("model");
  layout.channels = model.value("input_channels", int64_t{3});
  const Json& data = resolved.at("data");
  // A set that declares no bands or maximum takes the training set's (the usual case: one layout).
  for (const std::string set : {set_key.substr(set_key.find('.') + 1), std::string("train")}) {
    if (!data.contains(set) || !data.at(set).is_object()) continue;
    if (layout.bands.empty()) layout.bands = data.at(set).value("bands", std::vector<int>{});
    if (layout.pixel_max == 0) layout.pixel_max = data.at(set).value("pixel_max", 0.0);
    if (layout.band_files.empty()) layout.band_files = data.at(set).value("band_files", "");
  }
  return layout;
}

cv::Mat decode_image_bands(std::string_view bytes, const std::string& source, const BandLayout& layout,
                           int64_t max_pixels) {
  // The plain layout decodes as decode_image_rgb (EXIF orientation, gray and alpha to RGB), with
  // the depth kept so that a 16-bit file is not silently cut to its high byte.
  try {
    const cv::Mat decoded = decoded_in_file_order(bytes, source, layout, max_pixels);
    if (layout.is_plain_rgb() && decoded.type() == CV_8UC3) return decoded;
    return scaled_bands(decoded, layout, source);
  } catch (const cv::Exception&) {  // a layout OpenCV cannot convert (its allocation)
    throw Error(source + ": cannot decode image: not a valid JPEG/PNG/BMP/TIFF/WebP file");
  }
}

cv::Mat read_image_bands(const std::string& path, const BandLayout& layout, int64_t max_pixels) {
  if (!layout.band_files.empty()) return read_band_files(path, layout, max_pixels);
  return decode_image_bands(read_text_file(path), path, layout, max_pixels);
}

std::string first_band_path(const std::string& path, const BandLayout& layout) {
  if (layout.band_files.empty() || layout.bands.empty()) return path;
  return band_file(path, layout.band_files, layout.bands.front());
}

std::string BandLayout::key(const std::string& name) const {
  if (!set_key.empty()) return set_key + "." + name;
  std::string flag = "--" + name;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

cv::Mat display_rgb(const cv::Mat& image, const std::vector<int>& view, const std::string& view_key) {
  if (image.type() == CV_8UC3 && view.empty()) return image;
  if (!view.empty() && view.size() != 1 && view.size() != 3)
    throw Error(view_key + ": expected 3 channels (R, G, B) or 1 (gray), found " + std::to_string(view.size()));
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  std::vector<int> shown = view;
  if (shown.empty()) shown = planes.size() >= 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{0};
  std::vector<cv::Mat> rgb;
  for (const int channel : shown) {
    if (channel < 0 || channel >= static_cast<int>(planes.size()))
      throw Error(view_key + ": names channel " + std::to_string(channel) + ", the model's images have " +
                  std::to_string(planes.size()) + " (0-" + std::to_string(planes.size() - 1) + ")");
    rgb.push_back(planes[channel]);
  }
  if (rgb.size() == 1) rgb = {rgb[0], rgb[0], rgb[0]};
  cv::Mat merged, drawn;
  cv::merge(rgb, merged);
  merged.convertTo(drawn, CV_8UC3);  // saturates
  return drawn;
}

cv::Mat read_image_view(const std::string& path, const BandView& view, int64_t max_pixels) {
  const std::string bytes = read_text_file(path);
  if (view.bands.empty() && view.pixel_max == 0 && !is_tiff(bytes)) return decode_image_rgb(bytes, path, max_pixels);
  if (!view.bands.empty() && view.bands.size() != 1 && view.bands.size() != 3)
    throw Error("--bands: expected 3 bands (R, G, B) or 1 (gray), found " + std::to_string(view.bands.size()));
  BandLayout layout;
  layout.set_key.clear();
  layout.pixel_max = view.pixel_max;
  layout.bands = {0};  // any selection: the file's own bands and depth, not the plain RGB decoding
  try {
    const cv::Mat decoded = decoded_in_file_order(bytes, path, layout, max_pixels);
    layout.bands = view.bands;
    if (layout.bands.empty()) layout.bands = decoded.channels() >= 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{0};
    layout.channels = static_cast<int64_t>(layout.bands.size());
    return display_rgb(scaled_bands(decoded, layout, path));
  } catch (const cv::Exception&) {  // a layout OpenCV cannot convert (its allocation)
    throw Error(path + ": cannot decode image: not a valid JPEG/PNG/BMP/TIFF/WebP file");
  }
}

}  // namespace mrcnn
