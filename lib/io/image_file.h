// Image files: decoding to RGB, and turning the paths, folders and globs users give into a list.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mrcnn {

// The most pixels an image may have before it is decoded: Pillow's decompression-bomb limit
// (2 x 89,478,485; ~0.5 GB as 8-bit RGB). A 20k x 20k PNG of a few hundred KB would otherwise
// take 1.2 GB decoded and as much again converted.
inline constexpr int64_t kDefaultMaxImagePixels = 178956970;
// The most a user may raise it to (65536 x 65536, the largest image side a configuration takes).
inline constexpr int64_t kLargestMaxImagePixels = int64_t{1} << 32;

// 8-bit, 3-channel RGB (grayscale and alpha are converted). Throws Error naming `source` when
// the bytes are not a decodable image, or when the image has more than max_pixels pixels (checked
// from the file's header before decoding for PNG, JPEG, BMP, WebP and TIFF, and on the decoded
// image for other formats). For bytes from any place: files, TFRecord records.
cv::Mat decode_image_rgb(std::string_view bytes, const std::string& source,
                         int64_t max_pixels = kDefaultMaxImagePixels);

// The decoding under decode_image_rgb: OpenCV's imdecode with imread_flags (its channel order,
// BGR; the depth and channels the flags keep), with the same checks and messages.
cv::Mat decode_image_flags(std::string_view bytes, const std::string& source, int imread_flags,
                           int64_t max_pixels = kDefaultMaxImagePixels);

// decode_image_rgb of a file's bytes. Throws Error naming the file when it is missing,
// unreadable, not a regular file, not a decodable image or too large.
cv::Mat read_image_rgb(const std::string& path, int64_t max_pixels = kDefaultMaxImagePixels);

// Width and height as an image file's header states them (PNG, JPEG, BMP, WebP, TIFF), without
// decoding; nullopt for other formats and headers that cannot be parsed.
struct ImageDimensions {
  int64_t width = 0, height = 0;
};
std::optional<ImageDimensions> image_header_dimensions(std::string_view bytes);

// Files as given, image files in folders (not recursive), glob patterns expanded; sorted and
// without duplicates. Entries of folders and globs that are not regular files (FIFOs, sockets)
// are left out with a warning; a file given by name is kept, and reading it reports what it is.
// Throws Error for a path that doesn't exist, a folder without images, a glob that matches nothing.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs);

// True for the extensions read_image_rgb decodes (.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp).
bool has_image_extension(const std::string& path);

// Writes an RGB image (PNG or JPEG by extension; RGBA keeps its 4th band in a PNG) atomically.
void write_image_rgb(const std::string& path, const cv::Mat& rgb);

}  // namespace mrcnn
