// A TF OD API Faster / Mask R-CNN checkpoint (TF2, object-based) loaded into TfodMaskRcnn: the
// extractor through tf_weights' Inception-ResNet-v2 map, the heads (RPN conv, first-stage box
// and class predictors, mask_rcnn_box_predictor's dense and mask layers) by their Keras names.
#pragma once

#include <string>
#include <vector>

namespace mrcnn::model {

class TfodMaskRcnnImpl;

// One head variable of the checkpoint: our parameter, the Keras variable name, the checkpoint key.
struct TfodHeadMapping {
  std::string parameter, variable, key;
};

// Loads every weight of `model` from the checkpoint `path` names (see tf::resolve_checkpoint_prefix):
// kernels HWIO -> OIHW, dense kernels (in, out) -> (out, in), shapes checked. Throws one Error
// naming every head variable missing, unmapped (outside the extractor, not an optimizer slot) or of
// the wrong shape.
void load_tfod_mask_rcnn_from_tf(const std::string& path, TfodMaskRcnnImpl& model);

// `path` names a weights file under our parameter names (safetensors, torch.save), not a TF
// checkpoint (its prefix, .index or a data shard, a training folder, a SavedModel).
bool tfod_is_weights_file(const std::string& path);

// Fine-tuning from a TF checkpoint: each head variable whose shape fits is copied into `model`
// (not the extractor: load_inception_resnet_v2_from_tf); returns our head parameters left as they
// were, missing from the checkpoint or of another shape (another num_classes).
std::vector<std::string> load_tfod_heads_that_fit(const std::string& path, TfodMaskRcnnImpl& model);

// Loads `model` from `path`: a weights file under our parameter names (.safetensors, such as a
// self-contained model.safetensors, or torch.save), else a TF checkpoint as above (a prefix, its
// .index or a data shard, a training folder or a SavedModel). A weights file that does not fit is
// one Error, or with allow_partial a warning naming what was left at its initial value; a TF
// checkpoint loads whole or not at all.
void load_tfod_weights(TfodMaskRcnnImpl& model, const std::string& path, bool allow_partial);

}  // namespace mrcnn::model
