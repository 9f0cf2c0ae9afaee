// Data-parallel training on torch.distributed's c10d: which process this is (from torchrun's or
// Slurm's environment) and the collectives the trainer needs (broadcast, gradient averaging).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace mrcnn::train {

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "single";  // single | torchrun (RANK, WORLD_SIZE...) | slurm

  // Started by a launcher (torchrun, srun, --nproc): train in a process group, even of one
  // process (what `torchrun --nproc-per-node 1` asks for, e.g. to measure the collectives' cost).
  bool enabled() const { return launcher != "single"; }
};

// RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT as torchrun and `mrcnn-train --nproc`
// set them; else Slurm's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (MASTER_ADDR/PORT still from
// the environment, with defaults). Throws Error naming the variable when a value is malformed.
DistributedEnv distributed_env(const std::function<const char*(const char*)>& lookup);
DistributedEnv distributed_env();  // from this process's environment

// A c10d process group over a TCPStore rendezvous: NCCL when training on CUDA (and this build has
// NCCL's header), else Gloo; tensors on the other kind of device are staged through copies.
// Every collective waits at most `timeout`; when another rank died or hangs it throws Error
// saying so instead of hanging.
class ProcessGroup {
 public:
  ProcessGroup(const DistributedEnv& env, std::chrono::milliseconds timeout, bool cuda = false);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;

  // Copies root's tensors into everyone's (identical initial weights). timeout: this call's wait
  // when longer than the group's (the start, where ranks read their data at different speeds).
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Sums (or takes the maximum) in place across ranks.
  void all_reduce_sum(const std::vector<at::Tensor>& tensors);
  void all_reduce_max(const std::vector<at::Tensor>& tensors);
  // "nccl" or "gloo".
  std::string backend() const;
  // Replaces each parameter's gradient by its mean over the ranks. Gradients are packed into
  // flat buckets of about bucket_bytes, one all-reduce per bucket; a missing gradient counts
  // as zeros (so every rank sends the same layout).
  void average_gradients(const std::vector<at::Tensor>& params, size_t bucket_bytes = size_t(25) << 20);
  // Every rank's string, in rank order, on every rank (validation results, small summaries);
  // tag must be new for every call.
  std::vector<std::string> all_gather(const std::string& value, const std::string& tag);
  void barrier();

  // Seconds spent in collectives since the last call (communication time per step).
  double take_communication_seconds();

 private:
  friend class GradientAverager;
  struct State;
  std::unique_ptr<State> state_;
};

// Gradient averaging that overlaps the backward pass, as PyTorch's DDP does: parameters go into
// buckets of about bucket_bytes in reverse order (the order backward produces their gradients);
// a hook on each parameter copies its gradient into its bucket, and a full bucket starts its
// all-reduce at once, while backward goes on. Buckets start in the same order on every rank,
// whatever order the hooks fire in. finish() starts what is left (a parameter without a gradient
// this step counts as zeros), waits, and writes the means into the parameters' .grad.
class GradientAverager {
 public:
  GradientAverager(ProcessGroup& group, std::vector<at::Tensor> params, size_t bucket_bytes = size_t(25) << 20);
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // Call before each backward pass, then finish() after it (also when this rank had no batch).
  void prepare();
  void finish();

 private:
  struct Buckets;
  std::unique_ptr<Buckets> buckets_;
};

}  // namespace mrcnn::train
