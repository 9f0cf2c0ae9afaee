#include "io/tiff_file.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <vector>

#include "io/inflate.h"
#include "io/tiff_codecs.h"

namespace mrcnn {
namespace {

constexpr bool kHostBigEndian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;

// The file's bytes, read in its byte order; every read is checked against the file's size.
class TiffBytes {
 public:
  TiffBytes(std::string_view bytes, const std::string& source) : bytes_(bytes), source_(source) {
    big_endian_ = bytes.substr(0, 2) == "MM";
    const uint64_t version = uint(2, 2, "header");
    if (version == 43) throw TiffUnsupported(source + ": BigTIFF is not read; save the image as classic TIFF");
    if (version != 42) fail("header has version " + std::to_string(version) + ", 42 expected");
  }
  bool big_endian() const { return big_endian_; }
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": TIFF " + what); }
  // count bytes at offset; what names them in the error when they lie past the end.
  std::string_view slice(uint64_t offset, uint64_t count, const std::string& what) const {
    if (offset > bytes_.size() || count > bytes_.size() - offset) {
      const std::string end = offset > UINT64_MAX - count ? "beyond 2^64" : std::to_string(offset + count);
      fail(what + " ends at byte " + end + ", past the file's " + std::to_string(bytes_.size()) + " bytes");
    }
    return bytes_.substr(offset, count);
  }
  uint64_t uint(uint64_t offset, int size, const std::string& what) const { return decode(slice(offset, size, what)); }
  // An unsigned integer of 1 to 8 bytes in the file's byte order.
  uint64_t decode(std::string_view field) const {
    uint64_t value = 0;
    for (size_t i = 0; i < field.size(); ++i) {
      const size_t at = big_endian_ ? i : field.size() - 1 - i;
      value = (value << 8) | static_cast<uint8_t>(field[at]);
    }
    return value;
  }

 private:
  std::string_view bytes_;
  const std::string& source_;
  bool big_endian_ = false;
};

constexpr int kTagWidth = 256, kTagLength = 257, kTagBits = 258, kTagCompression = 259, kTagPhotometric = 262,
              kTagFillOrder = 266, kTagStripOffsets = 273, kTagSamples = 277, kTagRowsPerStrip = 278,
              kTagStripByteCounts = 279, kTagPlanar = 284, kTagPredictor = 317, kTagTileWidth = 322,
              kTagTileLength = 323, kTagTileOffsets = 324, kTagTileByteCounts = 325, kTagSampleFormat = 339;

// The first image file directory: where each tag's 12-byte entry is (its values are read on demand,
// so that a tag this reader ignores cannot fail the file).
class TiffDirectory {
 public:
  explicit TiffDirectory(const TiffBytes& file) : file_(file) {
    const uint64_t at = file.uint(4, 4, "header");
    const uint64_t count = file.uint(at, 2, "image directory at byte " + std::to_string(at));
    const std::string_view entries = file.slice(at + 2, 12 * count, "image directory of " + std::to_string(count) +
                                                                        " entries at byte " + std::to_string(at));
    for (uint64_t i = 0; i < count; ++i)
      entries_.emplace(static_cast<int>(file.decode(entries.substr(12 * i, 2))), entries.substr(12 * i, 12));
  }
  bool has(int tag) const { return entries_.count(tag) != 0; }

  // The integer values of tag (BYTE, SHORT or LONG); empty when the file lacks it.
  std::vector<uint64_t> values(int tag, const char* name) const {
    const auto found = entries_.find(tag);
    if (found == entries_.end()) return {};
    const std::string_view entry = found->second;
    const uint64_t type = file_.decode(entry.substr(2, 2)), count = file_.decode(entry.substr(4, 4));
    const int size = type == 1 ? 1 : type == 3 ? 2 : type == 4 ? 4 : 0;
    const std::string what = std::string("tag ") + std::to_string(tag) + " (" + name + ")";
    if (size == 0) file_.fail(what + " has type " + std::to_string(type) + ", BYTE, SHORT or LONG expected");
    if (count == 0) file_.fail(what + " has no values");
    const std::string_view data = size * count <= 4 ? entry.substr(8, size * count)
                                                    : file_.slice(file_.decode(entry.substr(8, 4)), size * count,
                                                                  what + "'s " + std::to_string(count) + " values");
    std::vector<uint64_t> out(count);
    for (uint64_t i = 0; i < count; ++i) out[i] = file_.decode(data.substr(i * size, size));
    return out;
  }
  // A tag of one value (or the same value for every sample), fallback when absent.
  uint64_t value(int tag, const char* name, uint64_t fallback) const {
    const std::vector<uint64_t> all = values(tag, name);
    if (all.empty()) return fallback;
    if (std::any_of(all.begin(), all.end(), [&](uint64_t v) { return v != all[0]; }))
      throw TiffUnsupported(file_.source() + ": TIFF tag " + std::to_string(tag) + " (" + name +
                            ") differs between samples; mrcnn reads images whose samples all have one type");
    return all[0];
  }
  uint64_t required(int tag, const char* name) const {
    if (!has(tag)) file_.fail("has no " + std::string(name) + " (tag " + std::to_string(tag) + ")");
    return value(tag, name, 0);
  }

 private:
  const TiffBytes& file_;
  std::map<int, std::string_view> entries_;  // the first entry of a tag wins
};

// What the reader needs to know to place each strip or tile.
struct TiffLayout {
  int64_t width = 0, height = 0;
  int samples = 1, sample_bytes = 1, cv_depth = CV_8U;
  bool planar = false, tiled = false;
  uint64_t compression = 1, predictor = 1;
  int64_t block_width = 0, block_height = 0;  // a tile, or a strip: the full width by RowsPerStrip rows
  int64_t blocks_across = 0, blocks_down = 0;
  std::vector<uint64_t> offsets, byte_counts;

  int64_t block_count() const { return blocks_across * blocks_down * (planar ? samples : 1); }
  const char* block_name() const { return tiled ? "tile" : "strip"; }
  int64_t block_pixel_bytes() const { return int64_t{sample_bytes} * (planar ? 1 : samples); }
  // The decoded bytes of a block whose top row is `top`: a strip ends with the image.
  int64_t block_rows(int64_t top) const { return tiled ? block_height : std::min(block_height, height - top); }
};

[[noreturn]] void unsupported(const TiffBytes& file, const std::string& what, const std::string& reads) {
  throw TiffUnsupported(file.source() + ": TIFF " + what + ": not read by mrcnn's TIFF reader (it reads " + reads + ")");
}

// The OpenCV depth of BitsPerSample and SampleFormat.
int sample_depth(uint64_t bits, uint64_t format, const TiffBytes& file) {
  if (format == 1 && bits == 8) return CV_8U;
  if (format == 1 && bits == 16) return CV_16U;
  if (format == 2 && bits == 8) return CV_8S;
  if (format == 2 && bits == 16) return CV_16S;
  if (format == 2 && bits == 32) return CV_32S;
  if (format == 3 && bits == 32) return CV_32F;
  const char* kind = format == 1 ? "unsigned integer" : format == 2 ? "signed integer" : format == 3 ? "float" : nullptr;
  unsupported(file,
              kind ? std::to_string(bits) + "-bit " + kind + " samples" : "SampleFormat " + std::to_string(format),
              "8- and 16-bit unsigned, 8-, 16- and 32-bit signed integers, 32-bit floats");
}

void read_size(const TiffDirectory& dir, const TiffBytes& file, TiffLayout& layout) {
  layout.width = static_cast<int64_t>(dir.required(kTagWidth, "ImageWidth"));
  layout.height = static_cast<int64_t>(dir.required(kTagLength, "ImageLength"));
  if (layout.width == 0 || layout.height == 0 || layout.width > INT_MAX || layout.height > INT_MAX)
    file.fail("image is " + std::to_string(layout.width) + "x" + std::to_string(layout.height) +
              " pixels, 1 to 2^31-1 a side expected");
}

void read_samples(const TiffDirectory& dir, const TiffBytes& file, TiffLayout& layout) {
  const uint64_t samples = dir.value(kTagSamples, "SamplesPerPixel", 1);
  if (samples == 0 || samples > kMaxTiffSamples)
    file.fail("has " + std::to_string(samples) + " samples per pixel, 1 to " + std::to_string(kMaxTiffSamples) +
              " expected");
  layout.samples = static_cast<int>(samples);
  const uint64_t bits = dir.value(kTagBits, "BitsPerSample", 1);
  layout.cv_depth = sample_depth(bits, dir.value(kTagSampleFormat, "SampleFormat", 1), file);
  layout.sample_bytes = static_cast<int>(bits / 8);
  const uint64_t photometric = dir.value(kTagPhotometric, "PhotometricInterpretation", samples >= 3 ? 2 : 1);
  if (photometric != 1 && photometric != 2)
    unsupported(file, "PhotometricInterpretation " + std::to_string(photometric), "1, gray or bands, and 2, RGB");
  if (dir.value(kTagFillOrder, "FillOrder", 1) != 1) unsupported(file, "FillOrder 2 (reversed bits)", "FillOrder 1");
}

void read_coding(const TiffDirectory& dir, const TiffBytes& file, TiffLayout& layout) {
  const uint64_t planar = dir.value(kTagPlanar, "PlanarConfiguration", 1);
  if (planar != 1 && planar != 2) file.fail("PlanarConfiguration is " + std::to_string(planar) + ", 1 or 2 expected");
  layout.planar = planar == 2 && layout.samples > 1;
  layout.compression = dir.value(kTagCompression, "Compression", 1);
  const uint64_t c = layout.compression;
  if (c != 1 && c != 5 && c != 8 && c != 32946 && c != 32773)
    unsupported(file, "Compression " + std::to_string(c), "1 none, 5 LZW, 8 and 32946 Deflate, 32773 PackBits");
  // libtiff (so GDAL, Pillow, tifffile's readers) applies a predictor only with LZW and Deflate.
  const bool predicted_codec = c == 5 || c == 8 || c == 32946;
  layout.predictor = predicted_codec ? dir.value(kTagPredictor, "Predictor", 1) : 1;
  if (layout.predictor != 1 && layout.predictor != 2 && layout.predictor != 3)
    unsupported(file, "Predictor " + std::to_string(layout.predictor),
                "1 none, 2 horizontal differencing, 3 floating point");
  if (layout.predictor == 3 && layout.cv_depth != CV_32F)
    file.fail("has Predictor 3 (floating point) on integer samples, 1 or 2 expected");
}

// The block grid: tiles, or strips of RowsPerStrip rows.
void read_blocks(const TiffDirectory& dir, const TiffBytes& file, TiffLayout& layout) {
  layout.tiled = dir.has(kTagTileWidth) || dir.has(kTagTileOffsets);
  if (layout.tiled) {
    layout.block_width = static_cast<int64_t>(dir.required(kTagTileWidth, "TileWidth"));
    layout.block_height = static_cast<int64_t>(dir.required(kTagTileLength, "TileLength"));
    layout.offsets = dir.values(kTagTileOffsets, "TileOffsets");
    layout.byte_counts = dir.values(kTagTileByteCounts, "TileByteCounts");
  } else {
    layout.block_width = layout.width;
    layout.block_height = static_cast<int64_t>(
        std::min<uint64_t>(dir.value(kTagRowsPerStrip, "RowsPerStrip", UINT32_MAX), layout.height));
    layout.offsets = dir.values(kTagStripOffsets, "StripOffsets");
    layout.byte_counts = dir.values(kTagStripByteCounts, "StripByteCounts");
  }
  const std::string name = layout.block_name();
  if (layout.block_width <= 0 || layout.block_height <= 0 || layout.block_width > INT_MAX ||
      layout.block_height > INT_MAX)
    file.fail(name + "s are " + std::to_string(layout.block_width) + "x" + std::to_string(layout.block_height) +
              " pixels, 1 to 2^31-1 a side expected");
  layout.blocks_across = (layout.width + layout.block_width - 1) / layout.block_width;
  layout.blocks_down = (layout.height + layout.block_height - 1) / layout.block_height;
  const uint64_t expected = layout.block_count();
  for (const auto& [list, what] :
       {std::pair{&layout.offsets, " offsets"}, std::pair{&layout.byte_counts, " byte counts"}})
    if (list->size() < expected)
      file.fail("has " + std::to_string(list->size()) + " " + name + what + ", " + std::to_string(expected) +
                " expected for " + std::to_string(layout.width) + "x" + std::to_string(layout.height) + " pixels");
}

// The pixel limit, checked before anything else is read (the message is decode_image_flags').
void check_pixels(const TiffLayout& layout, const TiffBytes& file, int64_t max_pixels) {
  if (layout.width <= max_pixels / layout.height) return;
  throw Error(file.source() + ": image of " + std::to_string(layout.width) + "x" + std::to_string(layout.height) +
              " pixels is larger than the limit of " + std::to_string(max_pixels) +
              " pixels (a decompression bomb? --max-image-pixels, or data.max_image_pixels in training, raises the limit)");
}

// The decoded size of the image and of one block against the budget, before they are allocated.
void check_bytes(const TiffLayout& layout, const TiffBytes& file, int64_t max_pixels) {
  const int64_t budget = max_pixels * kMaxTiffBytesPerLimitPixel;
  const int64_t pixel_bytes = int64_t{layout.samples} * layout.sample_bytes;
  const bool block_fits = layout.block_width <= budget / layout.block_height;  // the product cannot overflow
  const int64_t block_pixels = block_fits ? layout.block_width * layout.block_height : budget + 1;
  if (layout.width * layout.height <= budget / pixel_bytes && block_pixels <= budget / pixel_bytes) return;
  throw Error(file.source() + ": TIFF of " + std::to_string(layout.width) + "x" + std::to_string(layout.height) +
              " pixels x " + std::to_string(layout.samples) + " bands (" + layout.block_name() + "s of " +
              std::to_string(layout.block_width) + "x" + std::to_string(layout.block_height) +
              ") decodes to more than the limit of " + std::to_string(budget) + " bytes (" +
              std::to_string(kMaxTiffBytesPerLimitPixel) +
              " bytes a pixel of the pixel limit; --max-image-pixels or data.max_image_pixels raises it)");
}

TiffLayout read_layout(const TiffBytes& file, int64_t max_pixels) {
  const TiffDirectory dir(file);
  TiffLayout layout;
  read_size(dir, file, layout);
  check_pixels(layout, file, max_pixels);  // first: a file left to OpenCV would hide the limit
  read_samples(dir, file, layout);
  read_coding(dir, file, layout);
  read_blocks(dir, file, layout);
  check_bytes(layout, file, max_pixels);
  return layout;
}

// Block `index`'s bytes as decompressed: exactly `expected` of them.
std::string block_bytes(const TiffBytes& file, const TiffLayout& layout, int64_t index, size_t expected) {
  const std::string block = std::string(layout.block_name()) + " " + std::to_string(index);
  const std::string_view data = file.slice(layout.offsets[index], layout.byte_counts[index], block);
  const std::string where = file.source() + ": TIFF " + block;
  std::string out;
  switch (layout.compression) {
    case 1: out = std::string(data.substr(0, expected)); break;
    case 5: out = decode_tiff_lzw(data, expected, where); break;
    case 32773: out = decode_packbits(data, expected, where); break;
    default: out = inflate_zlib(data, expected, where); break;  // 8 and 32946: both zlib streams
  }
  if (out.size() < expected)
    file.fail(block + " holds " + std::to_string(out.size()) + " bytes of pixels, " + std::to_string(expected) +
              " expected (truncated?)");
  return out;
}

template <typename T>
T load(const char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

template <typename T>
void store(char* at, T value) {
  std::memcpy(at, &value, sizeof(T));
}

void swap_sample_bytes(std::string& block, int sample_bytes) {
  for (size_t at = 0; at + sample_bytes <= block.size(); at += sample_bytes)
    std::reverse(block.begin() + at, block.begin() + at + sample_bytes);
}

// Predictor 2: each sample was stored as its difference from the same sample of the pixel to its
// left, within each row of the block (wrapping around as unsigned integers of the sample's width).
template <typename T>
void accumulate_rows(std::string& block, size_t row_bytes, size_t stride) {
  for (size_t row = 0; row + row_bytes <= block.size(); row += row_bytes)
    for (size_t at = row + stride; at < row + row_bytes; at += sizeof(T))
      store<T>(&block[at], static_cast<T>(load<T>(&block[at]) + load<T>(&block[at - stride])));
}

void undo_predictor(std::string& block, const TiffLayout& layout) {
  const size_t row_bytes = layout.block_width * layout.block_pixel_bytes(), stride = layout.block_pixel_bytes();
  if (layout.sample_bytes == 1) accumulate_rows<uint8_t>(block, row_bytes, stride);
  if (layout.sample_bytes == 2) accumulate_rows<uint16_t>(block, row_bytes, stride);
  if (layout.sample_bytes == 4) accumulate_rows<uint32_t>(block, row_bytes, stride);
}

// Predictor 3 (Adobe's floating-point predictor, as libtiff decodes it): each row holds the bytes
// of its values as planes, most significant bytes first, each byte differenced from the byte
// `stride` before it. Gives the values in the host's byte order, whatever the file's.
void undo_float_predictor(std::string& block, const TiffLayout& layout) {
  const size_t stride = layout.planar ? 1 : layout.samples, bytes = layout.sample_bytes;
  const size_t row_bytes = layout.block_width * layout.block_pixel_bytes(), values = row_bytes / bytes;
  std::string planes(row_bytes, '\0');
  for (size_t row = 0; row + row_bytes <= block.size(); row += row_bytes) {
    for (size_t at = row + stride; at < row + row_bytes; ++at)
      block[at] = static_cast<char>(static_cast<uint8_t>(block[at]) + static_cast<uint8_t>(block[at - stride]));
    planes.assign(block, row, row_bytes);
    for (size_t k = 0; k < values; ++k)
      for (size_t b = 0; b < bytes; ++b)  // byte b of the value in memory: plane bytes-1-b on little-endian hosts
        block[row + k * bytes + b] = planes[(kHostBigEndian ? b : bytes - 1 - b) * values + k];
  }
}

// Copies a decoded block into the image at (left, top); plane is the sample of a planar block, or -1.
void place_block(cv::Mat& image, const TiffLayout& layout, const std::string& block, int64_t left, int64_t top,
                 int plane) {
  const int64_t rows = std::min(layout.block_height, layout.height - top);
  const int64_t cols = std::min(layout.block_width, layout.width - left);
  const size_t in_pixel = layout.block_pixel_bytes(), out_pixel = size_t{image.elemSize()};
  const size_t row_bytes = layout.block_width * in_pixel;
  for (int64_t r = 0; r < rows; ++r) {
    const char* from = block.data() + r * row_bytes;
    char* to = reinterpret_cast<char*>(image.ptr(static_cast<int>(top + r))) + left * out_pixel;
    if (plane < 0) {
      std::memcpy(to, from, cols * in_pixel);
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) std::memcpy(to + c * out_pixel + plane * in_pixel, from + c * in_pixel, in_pixel);
  }
}

void decode_block(const TiffBytes& file, const TiffLayout& layout, int64_t index, cv::Mat& image) {
  const int64_t per_plane = layout.blocks_across * layout.blocks_down;
  const int plane = layout.planar ? static_cast<int>(index / per_plane) : -1;
  const int64_t left = (index % per_plane) % layout.blocks_across * layout.block_width;
  const int64_t top = (index % per_plane) / layout.blocks_across * layout.block_height;
  std::string block = block_bytes(file, layout, index,
                                  layout.block_rows(top) * layout.block_width * layout.block_pixel_bytes());
  if (layout.predictor == 3) {
    undo_float_predictor(block, layout);  // already in the host's byte order
  } else {
    if (file.big_endian() != kHostBigEndian) swap_sample_bytes(block, layout.sample_bytes);
    if (layout.predictor == 2) undo_predictor(block, layout);
  }
  place_block(image, layout, block, left, top, plane);
}

}  // namespace

bool is_tiff(std::string_view bytes) {
  const std::string_view head = bytes.substr(0, 4);
  return head == std::string_view("II*\0", 4) || head == std::string_view("MM\0*", 4) ||
         head == std::string_view("II+\0", 4) || head == std::string_view("MM\0+", 4);
}

cv::Mat decode_tiff(std::string_view bytes, const std::string& source, int64_t max_pixels) {
  if (!is_tiff(bytes)) throw Error(source + ": not a TIFF file (no II*/MM* header)");
  const TiffBytes file(bytes, source);
  const TiffLayout layout = read_layout(file, max_pixels);
  try {
    cv::Mat image(static_cast<int>(layout.height), static_cast<int>(layout.width),
                  CV_MAKETYPE(layout.cv_depth, layout.samples));
    for (int64_t index = 0; index < layout.block_count(); ++index) decode_block(file, layout, index, image);
    return image;
  } catch (const cv::Exception&) {  // OpenCV's allocation failing
    throw Error(source + ": cannot decode image: out of memory");
  } catch (const std::bad_alloc&) {
    throw Error(source + ": cannot decode image: out of memory");
  }
}

}  // namespace mrcnn
