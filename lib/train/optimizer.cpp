#include "train/optimizer.h"

#include <torch/torch.h>

#include <map>
#include <string>

namespace mrcnn::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSettings& settings,
                                                        const std::vector<at::Tensor>& params) {
  if (settings.type == "adamw")
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(settings.lr)
                                                             .betas({settings.beta1, settings.beta2})
                                                             .weight_decay(settings.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      params, torch::optim::SGDOptions(settings.lr).momentum(settings.momentum).weight_decay(settings.weight_decay));
}

StateDict optimizer_state(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params) {
  StateDict out;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = optimizer.state().find(params[i].unsafeGetTensorImpl());
    if (it == optimizer.state().end()) continue;
    const std::string p = "state." + std::to_string(i) + ".";
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      out.emplace_back(p + "momentum_buffer", sgd->momentum_buffer());
    } else if (auto* adam = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
      out.emplace_back(p + "exp_avg", adam->exp_avg());
      out.emplace_back(p + "exp_avg_sq", adam->exp_avg_sq());
      out.emplace_back(p + "step", torch::tensor({adam->step()}, torch::kLong));
    }
  }
  return out;
}

void restore_optimizer(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params,
                       const StateDict& saved, const OptimizerSettings& settings, const torch::Device& device) {
  std::map<std::string, at::Tensor> by_name(saved.begin(), saved.end());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string p = "state." + std::to_string(i) + ".";
    if (settings.type == "adamw") {
      if (!by_name.count(p + "exp_avg")) continue;
      auto state = std::make_unique<torch::optim::AdamWParamState>();
      state->exp_avg(by_name[p + "exp_avg"].to(device));
      state->exp_avg_sq(by_name[p + "exp_avg_sq"].to(device));
      state->step(by_name[p + "step"].item<int64_t>());
      optimizer.state()[params[i].unsafeGetTensorImpl()] = std::move(state);
    } else {
      if (!by_name.count(p + "momentum_buffer")) continue;
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(by_name[p + "momentum_buffer"].to(device));
      optimizer.state()[params[i].unsafeGetTensorImpl()] = std::move(state);
    }
  }
}

}  // namespace mrcnn::train
