// Fuzz target: an experiment configuration as the tools load it (JSON, validation against the key
// table with did-you-mean suggestions, defaults resolved, printed and compared).
#include "config/config.h"
#include "fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mrcnn::fuzz::expect_clean_errors([&] {
    const mrcnn::Json resolved = mrcnn::config::load_resolved(mrcnn::fuzz::scratch_file(data, size, ".json"));
    mrcnn::config::diff(resolved, mrcnn::config::resolve(mrcnn::Json::object()));
    (void)resolved.dump(2);
  });
  return 0;
}
