// Fuzz target: a safetensors weights file (8-byte header length, JSON header of names, dtypes,
// shapes and offsets, then the data) as the tools read weights: metadata, then every tensor.
#include "fuzzing.h"
#include "io/weights_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mrcnn;
  const std::string path = fuzz::scratch_file(data, size, ".safetensors");
  fuzz::expect_clean_errors([&] { (void)read_safetensors_metadata(path); });
  fuzz::expect_clean_errors([&] { (void)read_weights_file(path); });
  return 0;
}
