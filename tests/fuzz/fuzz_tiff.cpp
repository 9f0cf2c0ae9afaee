// Fuzz target: the TIFF reader (io/tiff_file with its LZW, PackBits and Deflate decoders) under a
// small pixel limit, then a decoded image through the band layout the model takes (io/image_bands).
#include <string_view>

#include "fuzzing.h"
#include "io/image_bands.h"
#include "io/tiff_file.h"

namespace {

// 1 Mpixel: 8 MB decoded at most, so that a hostile size is refused rather than allocated.
constexpr int64_t kMaxPixels = int64_t{1} << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
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
