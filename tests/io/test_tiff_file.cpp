// Our TIFF reader (io/tiff_file.h) on files built byte by byte here: every compression, the
// predictor, chunky and planar samples, strips and tiles, both byte orders, 1 to 8 bands of each
// sample type, against the pixels they were built from; hostile files (truncated, offsets past
// the end, absurd sizes, a directory pointing to itself, LZW and Deflate bombs) end in one Error.
#include <catch2/catch.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/image_bands.h"
#include "io/inflate.h"
#include "io/tiff_codecs.h"
#include "io/tiff_file.h"

using mrcnn::decode_tiff;

namespace {

// An integer of `size` bytes in the given byte order.
std::string integer(uint64_t value, int size, bool big_endian) {
  std::string out(size, '\0');
  for (int i = 0; i < size; ++i) out[big_endian ? size - 1 - i : i] = static_cast<char>(value >> (8 * i));
  return out;
}

// A TIFF made by hand: header, the blocks (strips or tiles) in order, out-of-line tag values,
// then one directory whose next-directory offset is `next_directory`. The offsets and byte counts
// of the blocks are added unless entries already hold them.
struct TiffWriter {
  bool big_endian = false, tiled = false;
  std::map<uint16_t, std::pair<uint16_t, std::vector<uint64_t>>> entries;  // tag: type, values
  std::vector<std::string> blocks;
  int64_t next_directory = 0;  // -1: the directory itself

  void set(uint16_t tag, std::vector<uint64_t> values, uint16_t type = 4) { entries[tag] = {type, values}; }

  std::string bytes() const {
    std::string out = (big_endian ? std::string("MM\0*", 4) : std::string("II*\0", 4)) + std::string(4, '\0');
    std::vector<uint64_t> offsets, counts;
    for (const std::string& block : blocks) {
      offsets.push_back(out.size());
      counts.push_back(block.size());
      out += block + std::string(out.size() % 2, '\0');
    }
    auto all = entries;
    all.emplace(tiled ? 324 : 273, std::pair{uint16_t{4}, offsets});
    all.emplace(tiled ? 325 : 279, std::pair{uint16_t{4}, counts});
    std::map<uint16_t, std::string> inline_values;
    for (const auto& [tag, entry] : all) {
      const int size = entry.first == 3 ? 2 : entry.first == 1 ? 1 : 4;
      std::string values;
      for (const uint64_t v : entry.second) values += integer(v, size, big_endian);
      if (values.size() <= 4) {
        inline_values[tag] = values + std::string(4 - values.size(), '\0');
      } else {
        inline_values[tag] = integer(out.size(), 4, big_endian);
        out += values + std::string(values.size() % 2, '\0');
      }
    }
    const uint64_t directory = out.size();
    out.replace(4, 4, integer(directory, 4, big_endian));
    out += integer(all.size(), 2, big_endian);
    for (const auto& [tag, entry] : all)
      out += integer(tag, 2, big_endian) + integer(entry.first, 2, big_endian) +
             integer(entry.second.size(), 4, big_endian) + inline_values[tag];
    return out + integer(next_directory < 0 ? directory : next_directory, 4, big_endian);
  }
};

// A test image: its size, samples, OpenCV depth, and a distinct bit pattern per sample.
struct Picture {
  int width = 5, height = 7, samples = 3, depth = CV_16U;

  int sample_bytes() const { return static_cast<int>(CV_ELEM_SIZE1(depth)); }
  uint64_t pattern(int x, int y, int s) const {
    if (depth == CV_32F) {
      const float value = (x - 2.5f) * 1.5f + y * 0.25f + s * 100.f;
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      return bits;
    }
    const uint64_t mixed = (x * 73856093ull) ^ (y * 19349663ull) ^ (s * 83492791ull) ^ 0x5a5a5a5aull;
    return mixed & ((uint64_t{1} << (8 * sample_bytes())) - 1);
  }
  cv::Mat expected() const {
    cv::Mat image(height, width, CV_MAKETYPE(depth, samples));
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        for (int s = 0; s < samples; ++s) {
          const uint64_t bits = pattern(x, y, s);
          std::memcpy(image.ptr(y) + (x * samples + s) * sample_bytes(), &bits, sample_bytes());  // little-endian host
        }
    return image;
  }
  int sample_format() const { return depth == CV_32F ? 3 : (depth == CV_8S || depth == CV_16S || depth == CV_32S) ? 2 : 1; }
};

// How the picture is cut and stored.
struct Storage {
  bool big_endian = false, planar = false, tiled = false;
  int predictor = 1;  // 2: horizontal differencing, 3: floating point
  int block_width = 0, block_height = 3;  // block_width 0: strips of the full width
  std::string (*compress)(const std::string&) = nullptr;
};

// One block's sample patterns (zero outside the picture), differenced for predictor 2.
std::vector<uint64_t> block_patterns(const Picture& p, const Storage& st, int left, int top, int plane) {
  const int width = st.tiled ? st.block_width : p.width;
  const int rows = st.tiled ? st.block_height : std::min(st.block_height, p.height - top);
  const int per_pixel = st.planar ? 1 : p.samples;
  std::vector<uint64_t> values(size_t(width) * rows * per_pixel, 0);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < width; ++x)
      for (int k = 0; k < per_pixel; ++k)
        if (left + x < p.width && top + y < p.height)
          values[(size_t(y) * width + x) * per_pixel + k] = p.pattern(left + x, top + y, st.planar ? plane : k);
  if (st.predictor == 2) {
    const uint64_t mask = (uint64_t{1} << (8 * p.sample_bytes())) - 1;
    for (int y = 0; y < rows; ++y)
      for (int i = width * per_pixel - 1; i >= per_pixel; --i) {
        uint64_t& v = values[size_t(y) * width * per_pixel + i];
        v = (v - values[size_t(y) * width * per_pixel + i - per_pixel]) & mask;
      }
  }
  return values;
}

// Predictor 3 from the TIFF Technical Note 3 text: each row's 32-bit values as four byte planes,
// most significant first, then each byte minus the one `stride` bytes before it.
std::string float_predicted(const std::vector<uint64_t>& values, size_t row_values, size_t stride) {
  std::string out;
  for (size_t row = 0; row < values.size(); row += row_values) {
    std::string planes(4 * row_values, '\0');
    for (size_t k = 0; k < row_values; ++k)
      for (int b = 0; b < 4; ++b) planes[b * row_values + k] = static_cast<char>(values[row + k] >> (8 * (3 - b)));
    for (size_t i = planes.size() - 1; i >= stride; --i)
      planes[i] = static_cast<char>(static_cast<uint8_t>(planes[i]) - static_cast<uint8_t>(planes[i - stride]));
    out += planes;
  }
  return out;
}

std::string tiff_of(const Picture& p, const Storage& st, int compression) {
  TiffWriter w;
  w.big_endian = st.big_endian;
  w.tiled = st.tiled;
  w.set(256, {uint64_t(p.width)});
  w.set(257, {uint64_t(p.height)}, 3);
  w.set(258, std::vector<uint64_t>(p.samples, 8 * p.sample_bytes()), 3);
  w.set(259, {uint64_t(compression)}, 3);
  w.set(262, {p.samples >= 3 ? 2u : 1u}, 3);
  w.set(277, {uint64_t(p.samples)}, 3);
  w.set(284, {st.planar ? 2u : 1u}, 3);
  w.set(339, std::vector<uint64_t>(p.samples, p.sample_format()), 3);
  if (st.predictor != 1) w.set(317, {uint64_t(st.predictor)}, 3);
  const int bw = st.tiled ? st.block_width : p.width, bh = st.block_height;
  if (st.tiled) {
    w.set(322, {uint64_t(bw)});
    w.set(323, {uint64_t(bh)});
  } else {
    w.set(278, {uint64_t(bh)});
  }
  for (int plane = 0; plane < (st.planar ? p.samples : 1); ++plane)
    for (int top = 0; top < p.height; top += bh)
      for (int left = 0; left < p.width; left += bw) {
        const std::vector<uint64_t> values = block_patterns(p, st, left, top, plane);
        std::string raw;
        for (const uint64_t v : values) raw += integer(v, p.sample_bytes(), st.big_endian);
        const size_t per_pixel = st.planar ? 1 : p.samples;
        if (st.predictor == 3) raw = float_predicted(values, bw * per_pixel, per_pixel);
        w.blocks.push_back(st.compress ? st.compress(raw) : raw);
      }
  return w.bytes();
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  for (int y = 0; y < a.rows; ++y)
    if (std::memcmp(a.ptr(y), b.ptr(y), a.cols * a.elemSize()) != 0) return false;
  return true;
}

// --- Encoders of the test's own, written from the TIFF 6.0 and RFC 1950/1951 texts ---

std::string packbits(const std::string& raw) {
  std::string out;
  for (size_t i = 0; i < raw.size();) {
    size_t run = 1;
    while (i + run < raw.size() && run < 128 && raw[i + run] == raw[i]) ++run;
    if (run >= 3) {
      out += static_cast<char>(1 - static_cast<int>(run));
      out += raw[i];
      i += run;
      continue;
    }
    const size_t literal = std::min<size_t>(raw.size() - i, 128);
    out += static_cast<char>(literal - 1);
    out += raw.substr(i, literal);
    i += literal;
  }
  return out;
}

uint32_t adler32(const std::string& bytes) {
  uint32_t a = 1, b = 0;
  for (const char c : bytes) {
    a = (a + static_cast<uint8_t>(c)) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

// zlib with stored (uncompressed) Deflate blocks of at most 1000 bytes.
std::string zlib_stored(const std::string& raw) {
  std::string out("\x78\x01", 2);
  for (size_t at = 0; at == 0 || at < raw.size(); at += 1000) {
    const size_t n = std::min<size_t>(1000, raw.size() - at);
    out += static_cast<char>(at + n >= raw.size() ? 1 : 0);
    out += integer(n, 2, false) + integer(~n & 0xffff, 2, false) + raw.substr(at, n);
  }
  return out + integer(adler32(raw), 4, true);
}

// Codes of growing width, most significant bit first (LZW).
struct MsbBits {
  std::string out;
  uint32_t buffer = 0;
  int count = 0;
  void put(uint32_t code, int width) {
    buffer = (buffer << width) | code;
    for (count += width; count >= 8; count -= 8) out += static_cast<char>(buffer >> (count - 8));
  }
  std::string flushed() { return count > 0 ? out + static_cast<char>(buffer << (8 - count)) : out; }
};

// TIFF LZW as libtiff's encoder writes it: a clear code first, widths growing when the next free
// code reaches 2^width, a clear code when it reaches 4094.
std::string lzw(const std::string& raw) {
  MsbBits bits;
  std::map<std::pair<int, uint8_t>, int> table;
  int next = 258, width = 9, prefix = -1;
  bits.put(256, width);
  const auto added = [&] {
    if (++next == 4094) {
      bits.put(256, width);
      table.clear();
      next = 258;
      width = 9;
    } else if (next == (1 << width)) {
      ++width;
    }
  };
  for (const char c : raw) {
    const auto byte = static_cast<uint8_t>(c);
    if (prefix < 0) {
      prefix = byte;
      continue;
    }
    const auto found = table.find({prefix, byte});
    if (found != table.end()) {
      prefix = found->second;
      continue;
    }
    bits.put(prefix, width);
    table[{prefix, byte}] = next;
    added();
    prefix = byte;
  }
  if (prefix >= 0) {
    bits.put(prefix, width);
    added();
  }
  bits.put(257, width);
  return bits.flushed();
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// Python's zlib.compress(raw, 9) of the 48 x 32 gray picture below: one dynamic-Huffman block.
const char* const kZlibDynamic =
    "78dad5d1590e84300c04514258c2be04b8ff51e71dc3c3078aecea962a699abfff524a6ddbe69cbbaeebfb7e1886711c4b29d334cdf3bc2ccbb"
    "aaedbb6edfb7e1c47401e8c846100b656e779def7fd3ccff77d0ab5a9d213907706b3433282bdef8b5102d04056bcd62a1b9037670a362488a4"
    "260ebbae4bd6852814740f01795b67a6602b8eb24876aa046164f54805e4fd019ec9044cd356d025209578502985dc03f2187367e28260801ba0"
    "ac410ac95dadaa68fc0f095733d9";
// zlib.compressobj(9, DEFLATED, 15, 9, Z_FIXED) of the 24 x 16 picture below: one fixed-Huffman block.
const char* const kZlibFixed =
    "780163e0149256d135b3f7088c4ace29ad6b9f3073d1ea2d7b8f9d67c021ceca27aea06964ede21b169f5158d5dc3375def20d3b0f9dbe824b9"
    "c4b584655cfdcc133283a25b7acbe63e2acc56bb6ee3b7ee1262e717e09452d631b57bff084cca2ea96de69f3576cdc75f8ccd57bb8c44564d5f4"
    "2d1cbd826352f3ca1b3a27cd5eb276dbfe13176f3dc6252ea9a46d62ebe61f9198555cd3da377dc1ca4dbb8f9cbd76ff052e713975034b27ef90d"
    "8b4fc8ac6aec97396aedb7ee0e4a5db4fdee21257d631b5730f884cca2ea96deb9fb170d5e63d47cf5d7ff0f2132e71009ac2b581";

// A one-strip 8-bit gray TIFF of width x height holding `strip`, compressed as `compression`.
std::string gray_tiff(int width, int height, const std::string& strip, int compression) {
  TiffWriter w;
  w.set(256, {uint64_t(width)});
  w.set(257, {uint64_t(height)});
  w.set(258, {8}, 3);
  w.set(259, {uint64_t(compression)}, 3);
  w.set(278, {uint64_t(height)});
  w.blocks = {strip};
  return w.bytes();
}

cv::Mat gray_picture(int width, int height, int (*value)(int x, int y)) {
  cv::Mat image(height, width, CV_8UC1);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) image.at<uint8_t>(y, x) = static_cast<uint8_t>(value(x, y));
  return image;
}

}  // namespace

TEST_CASE("TIFFs of every sample type, band count, layout, byte order and compression decode exactly",
          "[io][tiff]") {
  const std::vector<std::pair<const char*, std::string (*)(const std::string&)>> compressions = {
      {"none", nullptr}, {"packbits", packbits}, {"deflate", zlib_stored}, {"lzw", lzw}};
  const std::map<std::string, int> codes = {{"none", 1}, {"packbits", 32773}, {"deflate", 8}, {"lzw", 5}};
  for (const int depth : {CV_8U, CV_16U, CV_8S, CV_16S, CV_32S, CV_32F})
    for (const int samples : {1, 2, 3, 5, 8})
      for (const auto& [name, compress] : compressions)
        for (int variant = 0; variant < 8; ++variant) {
          Picture p;
          p.depth = depth;
          p.samples = samples;
          Storage st;
          st.big_endian = variant & 1;
          st.planar = variant & 2;
          st.tiled = variant & 4;
          st.block_width = st.tiled ? 4 : 0;
          st.block_height = st.tiled ? 4 : 3;
          // A predictor only with the codecs libtiff applies it with (LZW, Deflate).
          const bool predicted_codec = codes.at(name) == 5 || codes.at(name) == 8;
          st.predictor = variant % 3 != 0 || !predicted_codec ? 1 : depth == CV_32F ? 3 : 2;
          st.compress = compress;
          INFO("depth " << depth << ", " << samples << " samples, " << name << ", variant " << variant);
          CHECK(same(decode_tiff(tiff_of(p, st, codes.at(name)), "a.tif", 1 << 20), p.expected()));
        }
}

TEST_CASE("a Predictor tag without LZW or Deflate is ignored, as libtiff ignores it", "[io][tiff]") {
  const cv::Mat picture = gray_picture(6, 4, [](int x, int y) { return 40 * y + 7 * x; });
  const std::string raw(reinterpret_cast<const char*>(picture.data), picture.total());
  for (const int compression : {1, 32773}) {
    TiffWriter w;
    w.set(256, {6});
    w.set(257, {4});
    w.set(258, {8}, 3);
    w.set(259, {uint64_t(compression)}, 3);
    w.set(278, {4});
    w.set(317, {2}, 3);  // horizontal differencing, which these codecs do not apply
    w.blocks = {compression == 1 ? raw : packbits(raw)};
    CHECK(same(decode_tiff(w.bytes(), "a.tif", 1 << 20), picture));
  }
}

TEST_CASE("Deflate streams from zlib itself decode: dynamic, fixed and stored blocks", "[io][tiff]") {
  const cv::Mat dynamic = gray_picture(48, 32, [](int x, int y) { return ((x / 3) * (y / 4)) % 23; });
  CHECK(same(decode_tiff(gray_tiff(48, 32, unhex(kZlibDynamic), 8), "d.tif", 1 << 20), dynamic));
  const cv::Mat fixed = gray_picture(24, 16, [](int x, int y) { return (x * 9 + (y / 2) * 5) & 0xff; });
  CHECK(same(decode_tiff(gray_tiff(24, 16, unhex(kZlibFixed), 32946), "f.tif", 1 << 20), fixed));
  std::string corrupt = unhex(kZlibDynamic);
  corrupt[corrupt.size() - 1] ^= 1;  // the Adler-32 checksum
  CHECK_THROWS_WITH(decode_tiff(gray_tiff(48, 32, corrupt, 8), "d.tif", 1 << 20),
                    "d.tif: TIFF strip 0: Deflate data fails its Adler-32 checksum (corrupt?)");
}

TEST_CASE("LZW crosses every code width and clears its table", "[io][tiff]") {
  std::string raw(20000, '\0');  // noise: fills the 4096-code table several times
  uint64_t state = 1;
  for (char& c : raw) c = static_cast<char>((state = state * 6364136223846793005u + 1442695040888963407u) >> 56);
  const std::string coded = lzw(raw);
  REQUIRE(coded.size() > raw.size());  // 12-bit codes on noise: past every width change
  CHECK(mrcnn::decode_tiff_lzw(coded, raw.size(), "x") == raw);
  CHECK(mrcnn::decode_tiff_lzw(coded, 100, "x") == raw.substr(0, 100));
  CHECK(mrcnn::decode_packbits(packbits(raw + std::string(300, 'a')), 20300, "x") == raw + std::string(300, 'a'));
}

TEST_CASE("images OpenCV writes as TIFF decode to OpenCV's own pixels", "[io][tiff]") {
  cv::Mat bgr(37, 29, CV_8UC3), wide, gray, real;
  cv::randu(bgr, 0, 256);
  bgr.convertTo(wide, CV_16U, 257);
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  gray.convertTo(real, CV_32F, 0.37, -20);  // one band: OpenCV writes 3-band floats as SGI LogLuv
  for (const cv::Mat& image : {bgr, wide, gray, real}) {
    std::vector<uchar> bytes;
    if (!cv::imencode(".tiff", image, bytes)) {  // the portable kit's OpenCV writes no TIFF
      WARN("OpenCV has no TIFF encoder");
      return;
    }
    cv::Mat in_file_order = image;
    if (image.channels() == 3) cv::cvtColor(image, in_file_order, cv::COLOR_BGR2RGB);
    CHECK(same(decode_tiff(std::string(bytes.begin(), bytes.end()), "cv.tif", 1 << 20), in_file_order));
  }
}

TEST_CASE("a 5-band 16-bit TIFF feeds the model through its pixel_max, bands picked in order", "[io][tiff][bands]") {
  Picture p;
  p.samples = 5;
  const std::string file = tiff_of(p, Storage{}, 1);
  mrcnn::BandLayout layout;
  layout.channels = 2;
  layout.bands = {4, 1};
  layout.pixel_max = 65535;
  const cv::Mat model_input = mrcnn::decode_image_bands(file, "m.tif", layout);
  REQUIRE(model_input.type() == CV_32FC2);
  CHECK(model_input.at<cv::Vec2f>(6, 4)[0] == static_cast<float>(p.pattern(4, 6, 4) * 255.0 / 65535));
  CHECK(model_input.at<cv::Vec2f>(6, 4)[1] == static_cast<float>(p.pattern(4, 6, 1) * 255.0 / 65535));
  CHECK_THROWS_WITH(mrcnn::decode_image_bands(file, "m.tif", mrcnn::BandLayout{}),
                    Catch::StartsWith("m.tif: 16-bit image, but data.train.pixel_max is not set"));
  layout.pixel_max = 0;
  p.depth = CV_8U;
  layout.bands = {};
  CHECK_THROWS_WITH(mrcnn::decode_image_bands(tiff_of(p, Storage{}, 1), "m.tif", layout),
                    Catch::StartsWith("m.tif: image has 5 bands, the model takes 2"));
}

TEST_CASE("hostile TIFFs end in one error naming the file and what was expected", "[io][tiff]") {
  Picture p;
  const std::string good = tiff_of(p, Storage{}, 1);
  // Cut inside the first strip (the blocks come right after the header).
  CHECK_THROWS_WITH(decode_tiff(good.substr(0, 40), "cut.tif", 1 << 20),
                    Catch::StartsWith("cut.tif: TIFF image directory"));
  CHECK_THROWS_WITH(decode_tiff(good.substr(0, 6), "cut.tif", 1 << 20),
                    "cut.tif: TIFF header ends at byte 8, past the file's 6 bytes");
  TiffWriter w;
  w.set(256, {5});
  w.set(257, {7});
  w.set(258, {8}, 3);
  w.set(278, {7});
  w.set(273, {1000});
  w.set(279, {35});
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "far.tif", 1 << 20),
                    Catch::StartsWith("far.tif: TIFF strip 0 ends at byte 1035, past the file's "));
  w.set(279, {20});
  w.set(273, {8});
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "short.tif", 1 << 20),
                    "short.tif: TIFF strip 0 holds 20 bytes of pixels, 35 expected (truncated?)");
  w.set(278, {2});
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "few.tif", 1 << 20),
                    "few.tif: TIFF has 1 strip offsets, 4 expected for 5x7 pixels");
  w.set(278, {1000000});
  w.set(256, {100000});
  w.set(257, {100000});
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "huge.tif", 1 << 20),
                    Catch::StartsWith("huge.tif: image of 100000x100000 pixels is larger than the limit of 1048576"));
  w.set(256, {1000});
  w.set(257, {1000});
  w.set(277, {64}, 3);
  w.set(258, {32}, 3);
  w.set(339, {3}, 3);
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "deep.tif", 1 << 20),
                    Catch::StartsWith("deep.tif: TIFF of 1000x1000 pixels x 64 bands"));
  w.set(277, {65}, 3);
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "many.tif", 1 << 20),
                    "many.tif: TIFF has 65 samples per pixel, 1 to 64 expected");
  w.set(256, {5}, 5);  // RATIONAL
  CHECK_THROWS_WITH(decode_tiff(w.bytes(), "type.tif", 1 << 20),
                    "type.tif: TIFF tag 256 (ImageWidth) has type 5, BYTE, SHORT or LONG expected");
  CHECK_THROWS_AS(decode_tiff(std::string("II+\0\x08\0\0\0", 8), "big.tif", 1 << 20), mrcnn::TiffUnsupported);
  Picture jpeg;
  CHECK_THROWS_AS(decode_tiff(tiff_of(jpeg, Storage{}, 7), "jpeg.tif", 1 << 20), mrcnn::TiffUnsupported);
  Storage float_predictor;
  float_predictor.predictor = 3;
  float_predictor.compress = zlib_stored;
  CHECK_THROWS_WITH(decode_tiff(tiff_of(jpeg, float_predictor, 8), "p3.tif", 1 << 20),
                    "p3.tif: TIFF has Predictor 3 (floating point) on integer samples, 1 or 2 expected");
}

TEST_CASE("a directory that points to itself is read once", "[io][tiff]") {
  TiffWriter w;
  w.set(256, {2});
  w.set(257, {1});
  w.set(258, {8}, 3);
  w.blocks = {"ab"};
  w.next_directory = -1;
  const cv::Mat image = decode_tiff(w.bytes(), "loop.tif", 1 << 20);
  CHECK((image.at<uint8_t>(0, 0) == 'a' && image.at<uint8_t>(0, 1) == 'b'));
}

TEST_CASE("LZW and Deflate bombs stop at the strip's size", "[io][tiff]") {
  const std::string zeros(4 << 20, '\0');  // 4 MB of zeros: a few KB of LZW
  const std::string bomb = lzw(zeros);
  REQUIRE(bomb.size() < 40000);
  CHECK(same(decode_tiff(gray_tiff(8, 8, bomb, 5), "lzw.tif", 1 << 20), cv::Mat(8, 8, CV_8UC1, cv::Scalar(0))));
  // A fixed-Huffman block: literal 0, then copies of 258 bytes at distance 1, as RFC 1951 3.2.6 codes them.
  std::string deflate("\x78\x01", 2);
  uint32_t buffer = 0b011;  // BFINAL 1, BTYPE 01
  int count = 3;
  const auto put_code = [&](uint32_t code, int length) {  // Huffman codes go most significant bit first
    for (int i = length - 1; i >= 0; --i) {
      buffer |= ((code >> i) & 1u) << count;
      if (++count == 8) {
        deflate += static_cast<char>(buffer);
        buffer = 0;
        count = 0;
      }
    }
  };
  put_code(0b00110000, 8);  // literal 0
  for (int i = 0; i < 100000; ++i) {
    put_code(0b11000101, 8);  // length 258 (symbol 285)
    put_code(0, 5);           // distance 1
  }
  put_code(0, 7);  // end of block
  deflate += static_cast<char>(buffer);
  CHECK(same(decode_tiff(gray_tiff(8, 8, deflate, 8), "zip.tif", 1 << 20), cv::Mat(8, 8, CV_8UC1, cv::Scalar(0))));
  CHECK_THROWS_WITH(mrcnn::inflate_zlib(deflate.substr(0, 40), 1 << 20, "z"), "z: Deflate data ends early (truncated?)");
}

TEST_CASE("corrupt compressed strips name the strip", "[io][tiff]") {
  CHECK_THROWS_WITH(decode_tiff(gray_tiff(4, 4, std::string("\x80\x7f\xff\xff", 4), 5), "l.tif", 1 << 20),
                    Catch::StartsWith("l.tif: TIFF strip 0: LZW data has code"));
  CHECK_THROWS_WITH(decode_tiff(gray_tiff(4, 4, "\x05" "ab", 32773), "p.tif", 1 << 20),
                    "p.tif: TIFF strip 0: PackBits data ends inside a literal run (truncated?)");
  CHECK_THROWS_WITH(decode_tiff(gray_tiff(4, 4, "xy", 8), "z.tif", 1 << 20),
                    "z.tif: TIFF strip 0: Deflate data has no zlib header");
}
