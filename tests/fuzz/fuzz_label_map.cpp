// Fuzz target: a label map (TF OD API label_map.pbtxt, or JSON as an object or a list), read by
// file as mrcnn-infer and mrcnn-visualize do; the first character picks the format.
#include "data/label_map.h"
#include "fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mrcnn::fuzz::expect_clean_errors([&] {
    const auto labels = mrcnn::data::LabelMap::read(mrcnn::fuzz::scratch_file(data, size, ".pbtxt"));
    for (const auto& [id, name] : labels.names()) (void)labels.name(id);
  });
  return 0;
}
