// TIFF images with any number of bands, read by a baseline decoder of our own: OpenCV's TIFF codec
// misreads files of 2 or more than 4 samples per pixel (and the portable kit's OpenCV has none),
// while multispectral stacks come with 5 to 16 bands.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace mrcnn {

// The most samples per pixel read: far more than any sensor stacks, far below OpenCV's 512.
inline constexpr int kMaxTiffSamples = 64;
// The most bytes a decoded image may take, per pixel of the pixel limit: a limit-sized image of
// four 16-bit bands, or a quarter of it with sixteen.
inline constexpr int64_t kMaxTiffBytesPerLimitPixel = 8;

// A well-formed TIFF that uses what this reader leaves to others (JPEG and other compressions,
// palette colour, min-is-white gray, 1- to 12-bit samples): a caller may try another decoder.
class TiffUnsupported : public Error {
 public:
  using Error::Error;
};

// True when bytes start with a TIFF header (classic or BigTIFF, either byte order).
bool is_tiff(std::string_view bytes);

// The first image of a TIFF, one channel per sample in file order, with the samples' own type:
// CV_8U, CV_16U, CV_8S, CV_16S, CV_32S or CV_32F (BitsPerSample 8/16/32, SampleFormat uint, int,
// IEEE float). Reads classic TIFF in both byte orders; strips or tiles; chunky or planar samples;
// no compression, Deflate (8, 32946), LZW (5) or PackBits (32773); Predictor 2 (horizontal
// differencing) and 3 (floating point). Throws Error
// "<source>: TIFF ..." naming what is wrong for a malformed file (every offset and count is
// checked against the bytes), for more than max_pixels pixels or more than
// max_pixels * kMaxTiffBytesPerLimitPixel decoded bytes (before anything is allocated), and
// TiffUnsupported for features outside that list.
cv::Mat decode_tiff(std::string_view bytes, const std::string& source, int64_t max_pixels);

}  // namespace mrcnn
