#include "io/image_file.h"

#include <glob.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"

namespace mrcnn {
namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".tif" || ext == ".tiff" ||
         ext == ".webp";
}

namespace {

// Bounds-checked reads of the fixed-size integers in image headers.
class HeaderBytes {
 public:
  explicit HeaderBytes(std::string_view bytes) : bytes_(bytes) {}
  bool has(size_t offset, size_t count) const { return offset <= bytes_.size() && count <= bytes_.size() - offset; }
  bool starts_with(size_t offset, std::string_view text) const {
    return has(offset, text.size()) && bytes_.substr(offset, text.size()) == text;
  }
  uint8_t byte(size_t offset) const { return static_cast<uint8_t>(bytes_[offset]); }
  // count bytes (1..4) at offset as an unsigned integer, big- or little-endian; call has() first.
  uint32_t uint(size_t offset, size_t count, bool big_endian) const {
    uint32_t value = 0;
    for (size_t i = 0; i < count; ++i) value |= uint32_t{byte(offset + i)} << (8 * (big_endian ? count - 1 - i : i));
    return value;
  }

 private:
  std::string_view bytes_;
};

std::optional<ImageDimensions> dimensions(int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) return std::nullopt;
  return ImageDimensions{width, height};
}

// PNG: the IHDR chunk comes first, right after the signature.
std::optional<ImageDimensions> png_dimensions(const HeaderBytes& b) {
  if (!b.starts_with(0, "\x89PNG\r\n\x1a\n") || !b.starts_with(12, "IHDR") || !b.has(16, 8)) return std::nullopt;
  return dimensions(b.uint(16, 4, true), b.uint(20, 4, true));
}

// JPEG: walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC).
std::optional<ImageDimensions> jpeg_dimensions(const HeaderBytes& b) {
  if (!b.starts_with(0, "\xff\xd8")) return std::nullopt;
  size_t pos = 2;
  while (b.has(pos, 4)) {
    if (b.byte(pos) != 0xff) return std::nullopt;
    const uint8_t marker = b.byte(pos + 1);
    if (marker == 0xff) {  // fill byte
      ++pos;
      continue;
    }
    pos += 2;
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;  // no length
    if (marker == 0xd9 || marker == 0xda) return std::nullopt;          // end, or scan data before any frame
    const uint32_t length = b.uint(pos, 2, true);
    const bool frame = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (frame) return b.has(pos, 7) ? dimensions(b.uint(pos + 5, 2, true), b.uint(pos + 3, 2, true)) : std::nullopt;
    if (length < 2) return std::nullopt;
    pos += length;
  }
  return std::nullopt;
}

// BMP: the DIB header after the 14-byte file header; a negative height means top-down rows.
std::optional<ImageDimensions> bmp_dimensions(const HeaderBytes& b) {
  if (!b.starts_with(0, "BM") || !b.has(14, 4)) return std::nullopt;
  if (b.uint(14, 4, false) == 12)  // BITMAPCOREHEADER: 16-bit sizes
    return b.has(18, 4) ? dimensions(b.uint(18, 2, false), b.uint(20, 2, false)) : std::nullopt;
  if (!b.has(18, 8)) return std::nullopt;
  const auto width = static_cast<int32_t>(b.uint(18, 4, false));
  const auto height = static_cast<int32_t>(b.uint(22, 4, false));
  return dimensions(width, height == INT32_MIN ? 0 : std::abs(int64_t{height}));
}

// WebP: the first chunk is the lossy (VP8), lossless (VP8L) or extended (VP8X) header.
std::optional<ImageDimensions> webp_dimensions(const HeaderBytes& b) {
  if (!b.starts_with(0, "RIFF") || !b.starts_with(8, "WEBP")) return std::nullopt;
  if (b.starts_with(12, "VP8 ") && b.has(26, 4) && b.starts_with(23, "\x9d\x01\x2a"))
    return dimensions(b.uint(26, 2, false) & 0x3fff, b.uint(28, 2, false) & 0x3fff);
  if (b.starts_with(12, "VP8L") && b.has(21, 4) && b.byte(20) == 0x2f) {
    const uint32_t bits = b.uint(21, 4, false);
    return dimensions((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
  }
  if (b.starts_with(12, "VP8X") && b.has(24, 6))
    return dimensions(int64_t{b.uint(24, 3, false)} + 1, int64_t{b.uint(27, 3, false)} + 1);
  return std::nullopt;
}

// TIFF: ImageWidth (256) and ImageLength (257) in the first image file directory.
std::optional<ImageDimensions> tiff_dimensions(const HeaderBytes& b) {
  const bool big = b.starts_with(0, std::string_view("MM\0*", 4));
  if (!big && !b.starts_with(0, std::string_view("II*\0", 4))) return std::nullopt;
  if (!b.has(4, 4)) return std::nullopt;
  const size_t ifd = b.uint(4, 4, big);
  if (!b.has(ifd, 2)) return std::nullopt;
  const size_t entries = b.uint(ifd, 2, big);
  int64_t width = 0, height = 0;
  for (size_t i = 0; i < entries && b.has(ifd + 2 + 12 * i, 12); ++i) {
    const size_t entry = ifd + 2 + 12 * i;
    const uint32_t tag = b.uint(entry, 2, big), type = b.uint(entry + 2, 2, big);
    if ((tag != 256 && tag != 257) || (type != 3 && type != 4)) continue;
    (tag == 256 ? width : height) = b.uint(entry + 8, type == 3 ? 2 : 4, big);
  }
  return dimensions(width, height);
}

// Whether a folder's or a glob's entry is an image to read. Only regular files (or links to them):
// reading a FIFO would block; those with an image name are reported, other folders are skipped.
bool keep_listed_file(const fs::directory_entry& entry, bool images_only) {
  std::error_code ec;
  const std::string path = entry.path().string();
  if (images_only && !has_image_extension(path)) return false;
  if (entry.is_regular_file(ec)) return true;
  if (!entry.is_directory(ec)) log::warn("{}: skipped: not a regular file (a FIFO, socket or device)", path);
  return false;
}

void check_pixel_count(ImageDimensions dims, const std::string& source, int64_t max_pixels) {
  if (dims.width <= max_pixels / dims.height) return;  // width * height <= max_pixels, without overflow
  throw Error(source + ": image of " + std::to_string(dims.width) + "x" + std::to_string(dims.height) +
              " pixels is larger than the limit of " + std::to_string(max_pixels) +
              " pixels (a decompression bomb? --max-image-pixels, or data.max_image_pixels in training, raises the limit)");
}

}  // namespace

std::optional<ImageDimensions> image_header_dimensions(std::string_view bytes) {
  const HeaderBytes b(bytes);
  for (const auto parse : {png_dimensions, jpeg_dimensions, bmp_dimensions, webp_dimensions, tiff_dimensions})
    if (const auto dims = parse(b)) return dims;
  return std::nullopt;
}

cv::Mat decode_image_flags(std::string_view bytes, const std::string& source, int imread_flags, int64_t max_pixels) {
  if (bytes.empty()) throw Error(source + ": cannot decode image: the file is empty");
  // Refused from the header, before the decoder allocates anything.
  if (const auto dims = image_header_dimensions(bytes)) check_pixel_count(*dims, source, max_pixels);
  const Error undecodable(source + ": cannot decode image: not a valid JPEG/PNG/BMP/TIFF/WebP file");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) throw undecodable;
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  try {
    const cv::Mat decoded = cv::imdecode(raw, imread_flags);
    if (decoded.empty()) throw undecodable;
    check_pixel_count({decoded.cols, decoded.rows}, source, max_pixels);  // formats without a parsed header
    return decoded;
  } catch (const cv::Exception&) {  // OpenCV's own checks (its size limits, truncated data)
    throw undecodable;
  } catch (const std::bad_alloc&) {
    throw Error(source + ": cannot decode image: out of memory");
  }
}

cv::Mat decode_image_rgb(std::string_view bytes, const std::string& source, int64_t max_pixels) {
  const cv::Mat decoded = decode_image_flags(bytes, source, cv::IMREAD_COLOR, max_pixels);
  cv::Mat rgb;
  try {
    cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
  } catch (const cv::Exception&) {  // as a failed decode (its allocation)
    throw Error(source + ": cannot decode image: not a valid JPEG/PNG/BMP/TIFF/WebP file");
  } catch (const std::bad_alloc&) {
    throw Error(source + ": cannot decode image: out of memory");
  }
  return rgb;
}

cv::Mat read_image_rgb(const std::string& path, int64_t max_pixels) {
  return decode_image_rgb(read_text_file(path), path, max_pixels);
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (input.find_first_of("*?[") != std::string::npos && !fs::exists(input, ec)) {
      glob_t matches{};
      const int rc = ::glob(input.c_str(), 0, nullptr, &matches);
      size_t found = 0;
      if (rc == 0) {
        for (size_t i = 0; i < matches.gl_pathc; ++i) {
          if (keep_listed_file(fs::directory_entry(matches.gl_pathv[i], ec), false)) {
            paths.emplace_back(matches.gl_pathv[i]);
            ++found;
          }
        }
      }
      globfree(&matches);
      if (found == 0) throw Error(input + ": the pattern matches no files");
    } else if (fs::is_directory(input, ec)) {
      size_t found = 0;
      for (const auto& entry : fs::directory_iterator(input, ec)) {
        if (keep_listed_file(entry, true)) {
          paths.push_back(entry.path().string());
          ++found;
        }
      }
      if (found == 0) throw Error(input + ": folder holds no image files (.jpg, .png, .bmp, .tif, .webp)");
    } else if (fs::exists(input, ec)) {
      paths.push_back(input);
    } else {
      throw Error(input + ": no such file or folder");
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

void write_image_rgb(const std::string& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, rgb.channels() == 4 ? cv::COLOR_RGBA2BGRA : cv::COLOR_RGB2BGR);
  std::string ext = fs::path(path).extension().string();
  if (ext.empty()) ext = ".png";
  std::vector<uchar> buffer;
  bool encoded = false;
  try {
    encoded = cv::imencode(ext, bgr, buffer);
  } catch (const cv::Exception&) {  // an extension OpenCV has no encoder for
  }
  if (!encoded) throw Error(path + ": cannot encode image as " + ext + " (use .png or .jpg)");
  write_file_atomic(path, std::string(buffer.begin(), buffer.end()));
}

}  // namespace mrcnn
