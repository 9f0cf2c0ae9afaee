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

}  // namespace mrcnn::model
