// Test helper: one rank of a c10d process group, started by tests/cli/test_distributed.py with
// torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). It exercises each
// collective the trainer uses and prints what it got as one JSON line. With --exit-after-join a
// rank leaves right after the rendezvous, with --hang-after-join it sleeps a minute; either way the
// others must fail within --timeout-ms.
#include <torch/torch.h>

#include <cstring>
#include <iostream>
#include <thread>

#include "core/error.h"
#include "io/json_file.h"
#include "train/distributed.h"

using namespace mrcnn;

int main(int argc, char** argv) {
  int timeout_ms = 20000, exit_rank = -1, hang_rank = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--timeout-ms") == 0) timeout_ms = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--exit-after-join") == 0) exit_rank = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--hang-after-join") == 0) hang_rank = std::atoi(argv[i + 1]);
  }
  try {
    const train::DistributedEnv env = train::distributed_env();
    train::ProcessGroup group(env, std::chrono::milliseconds(timeout_ms));
    if (group.rank() == exit_rank) return 0;
    if (group.rank() == hang_rank) std::this_thread::sleep_for(std::chrono::seconds(60));
    const int rank = group.rank(), world = group.size();

    // broadcast: everyone ends with rank 0's values.
    at::Tensor weights = torch::arange(6, torch::kFloat).view({2, 3}) + 100 * rank;
    group.broadcast({weights});

    // average_gradients: the mean of rank-dependent gradients, over several buckets; a parameter
    // without a gradient on this rank counts as zeros.
    std::vector<at::Tensor> params;
    for (int k = 0; k < 5; ++k) {
      params.push_back(torch::zeros({3 + k}, torch::requires_grad()));
      if (!(k == 4 && rank == 0)) params.back().mutable_grad() = torch::full({3 + k}, float(rank + 1) * (k + 1));
    }
    group.average_gradients(params, /*bucket_bytes=*/40);

    const std::vector<std::string> names = group.all_gather("rank" + std::to_string(rank), "names");
    group.barrier();
    Json out = {{"rank", rank}, {"world", world}, {"launcher", env.launcher}, {"names", names}};
    out["broadcast"] = std::vector<float>(weights.data_ptr<float>(), weights.data_ptr<float>() + weights.numel());
    for (const auto& p : params)
      out["grads"].push_back(std::vector<float>(p.grad().data_ptr<float>(), p.grad().data_ptr<float>() + p.numel()));
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const Error& e) {
    std::cerr << "dist_check: error: " << e.what() << "\n";
    return 2;
  }
}
