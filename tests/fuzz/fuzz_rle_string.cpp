// Fuzz target: pycocotools' compressed RLE counts string decoded (rleFrString), then every mask
// utility the evaluation and the drawing run on a decoded mask. Input: height byte, width byte,
// the counts string.
#include "eval/rle.h"
#include "fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mrcnn::eval;
  if (size < 2) return 0;
  const int64_t height = data[0], width = data[1];
  const std::string counts(reinterpret_cast<const char*>(data) + 2, size - 2);
  mrcnn::fuzz::expect_clean_errors([&] {
    const Rle rle = rle_from_string(counts, height, width);
    (void)rle.area();
    (void)rle.bbox();
    (void)rle_to_string(rle);
    const std::vector<uint8_t> mask = decode_rle(rle);
    const Rle again = encode_rle(mask.data(), height, width);
    (void)rle_merge({rle, again});
    (void)rle_merge({rle, again}, /*intersect=*/true);
    (void)rle_iou_matrix({&rle, &again}, {&rle}, {0});
    (void)rle_iou_matrix({&rle}, {&again}, {1});
  });
  return 0;
}
