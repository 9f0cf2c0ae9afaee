// Fuzz target: one tf.train.Example record (protobuf wire format: features, boxes, labels, PNG or
// float masks, encoded image), framed into a valid TFRecord file and read as a data set, with
// its image and masks decoded as training does.
#include <string_view>

#include "fuzzing.h"
#include "io/tfrecord.h"
#include "tf_example_fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mrcnn::fuzz::scratch_file(nullptr, 0, ".tfrecord");
  {
    mrcnn::TfRecordWriter writer(path);
    writer.write(std::string_view(reinterpret_cast<const char*>(data), size));
  }
  mrcnn::fuzz::read_tfrecord_set(path);
  return 0;
}
