// Image files: decoding to RGB, and turning the paths, folders and globs users give into a list.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace mrcnn {

// 8-bit, 3-channel RGB (grayscale and alpha are converted). Throws Error naming the file when
// it is missing, unreadable or not a decodable image.
cv::Mat read_image_rgb(const std::string& path);

// Files as given, image files in folders (not recursive), glob patterns expanded; sorted and
// without duplicates. Throws Error for a path that doesn't exist, a folder without images, a
// glob that matches nothing.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs);

// True for the extensions read_image_rgb decodes (.jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp).
bool has_image_extension(const std::string& path);

// Writes an RGB image (PNG or JPEG by extension) atomically.
void write_image_rgb(const std::string& path, const cv::Mat& rgb);

}  // namespace mrcnn
