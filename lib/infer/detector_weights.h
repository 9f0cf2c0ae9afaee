// The weights a Detector would run, as a state dict under our parameter names, for writing them
// once as a self-contained model (mrcnn-infer --save-model): a TF OD API checkpoint converted, a
// torch.save file kept with its configuration. Defined in detector.cpp, which builds the model.
#pragma once

#include "infer/detector.h"
#include "io/json_file.h"
#include "io/weights_file.h"  // StateDict (ATen's tensor type only)

namespace mrcnn::infer {

// The configured model (either family) with options.weights loaded, on the CPU, before any
// inference preparation (norms unfolded: the tensors equal a state dict). Throws Error as the
// Detector does.
StateDict loaded_model_weights(const Json& resolved_config, const DetectorOptions& options);

}  // namespace mrcnn::infer
