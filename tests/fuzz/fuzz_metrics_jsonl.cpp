// Fuzz target: a training run's metrics.jsonl as `mrcnn-visualize curves` reads and draws it.
#include "fuzzing.h"
#include "viz/figures.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mrcnn::fuzz::expect_clean_errors(
      [&] { (void)mrcnn::viz::training_curves(mrcnn::fuzz::scratch_file(data, size, ".jsonl")); });
  return 0;
}
