// TF checkpoints into libtorch: checkpoint tensors as at::Tensor, and the TF OD API's
// Inception-ResNet-v2 feature extractor variables mapped by name onto our modules' parameters.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "io/tf_checkpoint.h"

namespace mrcnn::model {

class InceptionResnetV2FirstStageImpl;
class InceptionResnetV2SecondStageImpl;

// A checkpoint tensor as a CPU tensor of the same dtype and shape (float32, float16, bfloat16,
// float64, int32, int64, bool, uint8, int8, int16). Throws Error naming `key` for strings and
// other dtypes.
at::Tensor tf_tensor_to_torch(const tf::Tensor& tensor, const std::string& key);

// One row of the variable map: our parameter (first_stage.* / second_stage.*), the TF variable
// name (Keras layer/weight) and the checkpoint key that holds it.
struct TfVariableMapping {
  std::string parameter, variable, key;
};

// The OD API feature extractor's variables as our parameters. Each Keras layer of the network is
// named in the checkpoint's object graph (its variables' full names): the named ones directly
// (block35_1_conv, conv_7b, conv_7b_bn), the conv2d_bn units by Keras' per-model counter
// (conv2d, conv2d_1, …, batch_normalization, batch_normalization_1, …), which numbers them in the
// order the network's code creates them; each convolution's norm must carry its number. Throws
// one Error naming every extractor variable left unmapped and every parameter left missing.
std::vector<TfVariableMapping> inception_resnet_v2_variable_map(const tf::Checkpoint& checkpoint,
                                                                const InceptionResnetV2FirstStageImpl& first_stage,
                                                                const InceptionResnetV2SecondStageImpl& second_stage);

// Loads the extractor's weights from the checkpoint `path` names into both stages: kernels HWIO →
// OIHW, shapes checked (one Error listing every mismatch).
void load_inception_resnet_v2_from_tf(const std::string& path, InceptionResnetV2FirstStageImpl& first_stage,
                                      InceptionResnetV2SecondStageImpl& second_stage);

}  // namespace mrcnn::model
