// Fuzz target: the TIFF reader (io/tiff_file) under a small pixel limit, a decoded image through the
// band layout the model takes (io/image_bands), and the same bytes as a raw LZW, PackBits and zlib
// stream (the decoders reach deeper than through a file's structure).
#include <cstdlib>
#include <string_view>

#include "fuzzing.h"
#include "io/image_bands.h"
#include "io/inflate.h"
#include "io/tiff_codecs.h"
#include "io/tiff_file.h"

namespace {

// 1 Mpixel: 8 MB decoded at most, so that a hostile size is refused rather than allocated.
constexpr int64_t kMaxPixels = int64_t{1} << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t limit = size % 4096 + 1;  // varied output sizes, each a bound the decoders must keep
  mrcnn::fuzz::expect_clean_errors([&] {
    if (mrcnn::decode_tiff_lzw(bytes, limit, "lzw").size() > limit) std::abort();
  });
  mrcnn::fuzz::expect_clean_errors([&] {
    if (mrcnn::decode_packbits(bytes, limit, "packbits").size() > limit) std::abort();
  });
  mrcnn::fuzz::expect_clean_errors([&] {
    if (mrcnn::inflate_zlib(bytes, limit, "zlib").size() > limit) std::abort();
  });
  bool decoded = false;
  mrcnn::fuzz::expect_clean_errors([&] {
    const cv::Mat image = mrcnn::decode_tiff(bytes, "fuzz.tif", kMaxPixels);
    decoded = !image.empty();
  });
  if (!decoded) return 0;  // unsupported files would go to OpenCV's libtiff, which is not ours to fuzz
  mrcnn::fuzz::expect_clean_errors([&] {
    mrcnn::BandLayout layout;
    layout.channels = 2;
    layout.bands = {size % 3 == 0 ? 1 : 0, 0};
    layout.pixel_max = 1000;
    (void)mrcnn::decode_image_bands(bytes, "fuzz.tif", layout, kMaxPixels);
  });
  return 0;
}
