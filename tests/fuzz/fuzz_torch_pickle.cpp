// Fuzz target: a torch.save file (.pth: the zip container or the legacy sequence of pickles) read
// by our own unpickler as the tools read weights.
#include "fuzzing.h"
#include "io/weights_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mrcnn;
  fuzz::expect_clean_errors([&] { (void)read_weights_file(fuzz::scratch_file(data, size, ".pth")); });
  return 0;
}
