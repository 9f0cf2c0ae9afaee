// A TF OD API pipeline.config's `model { faster_rcnn { ... } }` block with the Inception-ResNet-v2
// extractor as mrcnn's TF family keys (model.arch tf_faster_rcnn, model.num_classes, model.tf.*):
// every field that changes what the model computes is taken or refused by name (with the reason),
// so are the samplers' sizes and the loss weights; the other training-only fields (initialisers,
// hard example miner, the classification loss's kind) are passed over. The one place that
// knows the block's fields; model/tfod_settings.h reads the keys back.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/json_file.h"

namespace mrcnn::config {

// The feature extractor of the TF family, and the family's model.arch value.
inline constexpr const char* kTfFasterRcnnExtractor = "faster_rcnn_inception_resnet_v2_keras";
inline constexpr const char* kTfFasterRcnnArch = "tf_faster_rcnn";

// `pipeline` is io/text_proto's tree of the whole file; `source` names it in errors. Returns the
// configuration's model section (every model.tf key set; absent fields take the proto's
// defaults). Throws one Error listing every field that is malformed or that mrcnn's TF OD API
// model does not support (another feature extractor or anchor generator, batch norm in the
// heads, ...).
Json tf_faster_rcnn_model(const Json& pipeline, const std::string& source);

// A whole configuration of that model section alone, checked and resolved (defaults filled in):
// what model::tfod_settings_from_config takes (tests and tools that start from a pipeline.config).
Json resolved_tf_faster_rcnn_config(const Json& pipeline, const std::string& source);

// The fields only training reads that the above passes over, as paths under faster_rcnn (nested
// ones too: the heads' regularizers and initializers, dropout, batch_norm_trainable), each with
// what mrcnn's training does instead.
std::vector<std::pair<std::string, std::string>> tf_faster_rcnn_training_fields();

}  // namespace mrcnn::config
