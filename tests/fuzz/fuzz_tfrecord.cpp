// Fuzz target: a TFRecord file (length, masked CRC-32C, data, CRC; TF OD API tf.Example records)
// read as a tfrecord data set (corrupt records skipped), then each sample's image and masks
// decoded as training does. The record framing is what gets fuzzed: mutated record bodies fail
// their CRC, so fuzz_tf_example covers the bodies.
#include "data/datasets.h"
#include "fuzzing.h"
#include "tf_example_fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mrcnn::fuzz::read_tfrecord_set(mrcnn::fuzz::scratch_file(data, size, ".tfrecord"));
  return 0;
}
