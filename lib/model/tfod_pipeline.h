// A TF OD API pipeline.config's `model { faster_rcnn { ... } }` block read into TfodSettings for
// inference: every field that changes what the model computes is taken or refused by name (with
// the reason), the training-only fields (losses, samplers, initialisers) are passed over.
#pragma once

#include <string>

#include "io/json_file.h"
#include "model/tfod_settings.h"

namespace mrcnn::model {

// `pipeline` is io/text_proto's tree of the whole file; `source` names it in errors. Throws one
// Error listing every field that is malformed or that mrcnn's TF OD API model does not support
// (another feature extractor or anchor generator, batch norm in the heads, ...).
TfodSettings tfod_settings_from_pipeline(const Json& pipeline, const std::string& source);

// The same from a pipeline.config file.
TfodSettings read_tfod_pipeline(const std::string& path);

}  // namespace mrcnn::model
