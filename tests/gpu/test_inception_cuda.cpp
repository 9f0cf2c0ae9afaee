// On a GPU: the TF OD API's Inception-ResNet-v2 (both stages, TF's asymmetric SAME padding, the
// -inf padded max pools, the average pool without padding counted) on CUDA against the CPU, in
// float64 so that the comparison is exact up to rounding and no TF32 or kernel choice enters it.
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include "model/inception_resnet_v2.h"

TEST_CASE("Inception-ResNet-v2 on CUDA matches the CPU", "[gpu]") {
  torch::manual_seed(5);
  mrcnn::model::InceptionResnetV2FirstStage first;
  mrcnn::model::InceptionResnetV2SecondStage second;
  {
    torch::NoGradGuard no_grad;
    for (auto* stage : {static_cast<torch::nn::Module*>(first.get()), static_cast<torch::nn::Module*>(second.get())})
      for (auto& item : stage->named_buffers())
        item.value().uniform_(item.key().find("variance") != std::string::npos ? 0.5 : -0.1, 1.5);
  }
  first->eval();
  second->eval();
  first->to(torch::kDouble);
  second->to(torch::kDouble);
  c10::InferenceMode guard;
  // Even and odd sides: the stride-2 convolutions and pools pad (0, 1) or (1, 1).
  const at::Tensor image = torch::rand({1, 3, 98, 77}, torch::kDouble) * 2 - 1;
  const at::Tensor crops = torch::randn({3, 1088, 17, 17}, torch::kDouble);
  const at::Tensor cpu_features = first(image), cpu_boxes = second(crops);
  first->to(torch::kCUDA);
  second->to(torch::kCUDA);
  const at::Tensor gpu_features = first(image.cuda()).cpu(), gpu_boxes = second(crops.cuda()).cpu();
  INFO("max difference " << (gpu_features - cpu_features).abs().max().item<double>() << ", "
                         << (gpu_boxes - cpu_boxes).abs().max().item<double>());
  CHECK(torch::allclose(gpu_features, cpu_features, 1e-9, 1e-9));
  CHECK(torch::allclose(gpu_boxes, cpu_boxes, 1e-9, 1e-9));
}
