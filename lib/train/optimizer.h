// The optimiser a run steps (SGD with momentum or AdamW) and its state as named tensors, for checkpoints.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "io/weights_file.h"
#include "train/settings.h"

namespace mrcnn::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSettings& settings,
                                                        const std::vector<at::Tensor>& params);

// "state.I.momentum_buffer" (SGD) or "state.I.exp_avg", "state.I.exp_avg_sq", "state.I.step" (AdamW)
// for the I-th parameter; parameters without state yet are left out.
StateDict optimizer_state(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params);
void restore_optimizer(torch::optim::Optimizer& optimizer, const std::vector<at::Tensor>& params,
                       const StateDict& saved, const OptimizerSettings& settings, const torch::Device& device);

}  // namespace mrcnn::train
