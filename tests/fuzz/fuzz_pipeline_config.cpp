// Fuzz target: a TF OD API pipeline.config as `mrcnn-config import-tf` reads it (protobuf text
// format into a generic tree, fields mapped to an experiment configuration, which is validated).
#include "config/config.h"
#include "config/tf_pipeline.h"
#include "fuzzing.h"
#include "io/text_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mrcnn::fuzz::expect_clean_errors([&] {
    const std::string source = "pipeline.config";
    const mrcnn::Json tree = mrcnn::parse_text_proto(std::string(reinterpret_cast<const char*>(data), size), source);
    const mrcnn::config::TfImport imported = mrcnn::config::import_tf_pipeline(tree, source);
    mrcnn::config::require_valid(imported.config, source + " (imported)");
    (void)mrcnn::config::resolve(imported.config).dump(2);
  });
  return 0;
}
