// TF Object Detection API pipeline.config → an mrcnn experiment configuration: the Mask R-CNN
// fields that have an equivalent here are mapped, and every other field is reported with its
// path, so a user sees what did not carry over.
#pragma once

#include <string>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::config {

struct TfImport {
  Json config;                        // an experiment configuration (unresolved; defaults fill the rest)
  std::vector<std::string> mapped;    // "pipeline path -> mrcnn key", for the log
  std::vector<std::string> warnings;  // "pipeline path: not mapped (why)"
};

// pipeline: the text-format tree (io/text_proto.h) of a pipeline.config read from `source`.
// label_map: overrides the input readers' label_map_path when non-empty.
TfImport import_tf_pipeline(const Json& pipeline, const std::string& source, const std::string& label_map = "");

// Logs the fields not carried over as warnings: the first 100, the rest only with -v (real
// pipelines leave a few dozen behind; a hostile one can leave millions).
void log_not_carried_over(const std::vector<std::string>& warnings, const std::string& source);

}  // namespace mrcnn::config
