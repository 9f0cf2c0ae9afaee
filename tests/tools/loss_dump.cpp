// Test helper: the training loss terms of one step, with deterministic sampling, for the parity
// test against torchvision's loss dict (tests/reference/test_loss_parity.py). The data file holds
// imageN (3,H,W), boxesN (G,4), labelsN (G,), masksN (G,H,W) tensors.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <map>

#include "config/config.h"
#include "io/weights_file.h"
#include "model/mask_rcnn.h"
#include "model/weights.h"

using namespace mrcnn;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: loss_dump CONFIG WEIGHTS DATA.safetensors OUT.json\n";
    return 2;
  }
  try {
    const auto settings = model::ModelSettings::from_config(config::load_resolved(argv[1]));
    model::MaskRcnn net(settings);
    model::load_state_dict(*net, read_weights_file(argv[2]), false, argv[2]);
    net->train();
    std::map<std::string, at::Tensor> data;
    for (const auto& [name, tensor] : read_safetensors(argv[3])) data[name] = tensor;
    std::vector<at::Tensor> images;
    std::vector<model::Target> targets;
    for (int i = 0; data.count("image" + std::to_string(i)); ++i) {
      const std::string n = std::to_string(i);
      images.push_back(data["image" + n]);
      targets.push_back({data["boxes" + n], data["labels" + n], data["masks" + n]});
    }
    const auto losses = net->losses(images, targets, nullptr, /*deterministic_sampling=*/true);
    Json out = Json::object();
    at::Tensor total = torch::zeros({});
    for (const auto& [name, value] : losses) {
      out[name] = value.item<double>();
      total = total + value;
    }
    total.backward();
    // A gradient reaches every trainable part (the mask head, the box head, the RPN, the FPN).
    for (const char* key : {"roi_heads.mask_predictor.mask_fcn_logits.weight", "roi_heads.box_head.fc6.weight",
                            "rpn.head.cls_logits.weight", "backbone.fpn.layer_blocks.0.0.weight"})
      out["grad_norm:" + std::string(key)] = net->named_parameters()[key].grad().norm().item<double>();
    std::ofstream(argv[4]) << out.dump(2);
  } catch (const std::exception& e) {
    std::cerr << "loss_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
