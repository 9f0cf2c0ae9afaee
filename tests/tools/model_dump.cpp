// Test helper: runs the model stage by stage on images from a safetensors file and writes every
// intermediate (FPN features, proposals, detections) with torch::pickle_save, for the parity
// tests against torchvision (tests/reference/test_model_parity.py).
#include <torch/serialize.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "config/config.h"
#include "io/weights_file.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"

using namespace mrcnn;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: model_dump CONFIG WEIGHTS IMAGES.safetensors OUT.pt\n";
    return 2;
  }
  try {
    const auto settings = model::ModelSettings::from_config(config::load_resolved(argv[1]));
    model::MaskRcnn net(settings);
    model::load_state_dict(*net, read_weights_file(argv[2]), false, argv[2]);
    net->prepare_for_inference();
    std::vector<at::Tensor> images;
    for (const auto& [name, tensor] : read_safetensors(argv[3])) images.push_back(tensor.to(torch::kFloat));

    c10::InferenceMode guard;
    c10::Dict<std::string, at::Tensor> out;
    const model::ImageBatch batch = net->prepare_batch(images);
    out.insert("batch", batch.tensor.contiguous());
    const auto features = net->backbone()(batch.tensor);
    for (size_t i = 0; i < features.size(); ++i) out.insert("features_" + std::to_string(i), features[i]);
    const auto rpn = net->rpn()(batch, features);
    out.insert("rpn_objectness", rpn.objectness);  // the RPN head's outputs, before any selection
    out.insert("rpn_deltas", rpn.deltas);
    auto detections = net->roi_heads()->detect(features, rpn.proposals, batch.image_sizes);
    net->transform().to_original(detections, batch);
    for (size_t i = 0; i < images.size(); ++i) {
      const std::string n = std::to_string(i);
      out.insert("proposals_" + n, rpn.proposals[i]);
      out.insert("boxes_" + n, detections[i].boxes);
      out.insert("scores_" + n, detections[i].scores);
      out.insert("labels_" + n, detections[i].labels);
      out.insert("masks_" + n, detections[i].masks);
    }
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(out));
    std::ofstream(argv[4], std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } catch (const std::exception& e) {
    std::cerr << "model_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
