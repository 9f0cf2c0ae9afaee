// c10d from C++: a TCPStore for the rendezvous (what torchrun's env:// init does) and libtorch's
// ProcessGroupGloo. The wheel ships c10d's headers but not gloo's; Debian's libgloo-dev supplies
// the declarations ProcessGroupGloo.hpp includes, and the code itself is libtorch's.
#include "train/distributed.h"

#include <torch/torch.h>
#if MRCNN_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if MRCNN_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "core/error.h"

namespace mrcnn::train {
namespace {

int int_variable(const std::function<const char*(const char*)>& lookup, const char* name, int fallback, int lowest) {
  const char* text = lookup(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < lowest || value > 1 << 20)
    throw Error(std::string("environment variable ") + name + "='" + text + "': expected an integer >= " +
                std::to_string(lowest));
  return static_cast<int>(value);
}

// "8.0" rather than std::to_string's "8.000000".
std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  return text;
}

// The first line of an exception's message, without c10's backtrace: the error stays one line.
std::string brief(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  if (const size_t end = text.find('\n'); end != std::string::npos) text.resize(end);
  return text;
}

}  // namespace

DistributedEnv distributed_env(const std::function<const char*(const char*)>& lookup) {
  DistributedEnv env;
  if (lookup("WORLD_SIZE") != nullptr) {
    env.launcher = "torchrun";
    env.world_size = int_variable(lookup, "WORLD_SIZE", 1, 1);
    env.rank = int_variable(lookup, "RANK", 0, 0);
    env.local_rank = int_variable(lookup, "LOCAL_RANK", env.rank, 0);
  } else if (lookup("SLURM_NTASKS") != nullptr) {
    env.launcher = "slurm";
    env.world_size = int_variable(lookup, "SLURM_NTASKS", 1, 1);
    env.rank = int_variable(lookup, "SLURM_PROCID", 0, 0);
    env.local_rank = int_variable(lookup, "SLURM_LOCALID", 0, 0);
  }
  if (env.rank >= env.world_size)
    throw Error("rank " + std::to_string(env.rank) + " is not below the world size " + std::to_string(env.world_size) +
                " (" + (env.launcher == "slurm" ? "SLURM_PROCID / SLURM_NTASKS" : "RANK / WORLD_SIZE") + ")");
  if (const char* addr = lookup("MASTER_ADDR"); addr != nullptr && *addr != '\0') env.master_addr = addr;
  env.master_port = int_variable(lookup, "MASTER_PORT", env.master_port, 1);
  if (env.master_port > 65535) throw Error("MASTER_PORT=" + std::to_string(env.master_port) + ": not a TCP port");
  return env;
}

DistributedEnv distributed_env() {
  return distributed_env([](const char* name) { return std::getenv(name); });
}

#if MRCNN_WITH_GLOO

struct ProcessGroup::State {
  DistributedEnv env;
  std::chrono::milliseconds timeout;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> group;
  bool nccl = false;
  double communication_seconds = 0;

  // The tensor as the backend takes it: CUDA for NCCL, CPU for Gloo (copied when it is not).
  at::Tensor staged(const at::Tensor& t) const {
    if (nccl) return t.is_cuda() ? t : t.to(torch::Device(torch::kCUDA, env.local_rank));
    return t.is_cuda() ? t.cpu() : t;
  }
  void all_reduce(const at::Tensor& t, c10d::ReduceOp op, const char* what) {
    std::vector<at::Tensor> one = {staged(t)};
    c10d::AllreduceOptions options;
    options.reduceOp = op;
    wait(group->allreduce(one, options), what);
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }

  // Waits for a collective; a Gloo timeout or a closed connection becomes one clear error.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what,
            std::chrono::milliseconds longer = std::chrono::milliseconds(0)) {
    const auto start = std::chrono::steady_clock::now();
    const std::chrono::milliseconds limit = std::max(timeout, longer);
    try {
      work->wait(limit);
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(env.rank) + ": " + what + " failed after " +
                  seconds_text(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) +
                  " s (timeout " + seconds_text(limit.count() / 1000.0) +
                  " s): another rank died or hangs; stopping. (" + brief(e) + ")");
    }
    communication_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

ProcessGroup::ProcessGroup(const DistributedEnv& env, std::chrono::milliseconds timeout, bool cuda)
    : state_(std::make_unique<State>()) {
  state_->env = env;
  state_->timeout = timeout;
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = env.world_size;
  options.waitWorkers = true;
  options.timeout = timeout;
  try {
    state_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
#if MRCNN_WITH_NCCL
    if (cuda) {
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = timeout;
      state_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(state_->store, env.rank, env.world_size, nccl);
      state_->nccl = true;
    }
#else
    (void)cuda;
#endif
    if (!state_->nccl) {
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      state_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(state_->store, env.rank, env.world_size, gloo);
    }
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                ": cannot join the process group at " + env.master_addr + ":" + std::to_string(env.master_port) +
                " within " + seconds_text(timeout.count() / 1000.0) + " s: " + brief(e));
  }
}

ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return state_->env.rank; }
int ProcessGroup::size() const { return state_->env.world_size; }

std::string ProcessGroup::backend() const { return state_->nccl ? "nccl" : "gloo"; }

void ProcessGroup::broadcast(const std::vector<at::Tensor>& tensors, int root, std::chrono::milliseconds timeout) {
  torch::NoGradGuard no_grad;
  for (const at::Tensor& t : tensors) {
    std::vector<at::Tensor> one = {state_->staged(t.contiguous())};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    // The collective itself times out after options.timeout (unset: the group's), whatever wait allows.
    options.timeout = std::max(state_->timeout, timeout);
    state_->wait(state_->group->broadcast(one, options), "broadcast", timeout);
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>& tensors) {
  for (const at::Tensor& t : tensors) state_->all_reduce(t, c10d::ReduceOp::SUM, "all-reduce");
}

void ProcessGroup::all_reduce_max(const std::vector<at::Tensor>& tensors) {
  for (const at::Tensor& t : tensors) state_->all_reduce(t, c10d::ReduceOp::MAX, "all-reduce");
}

void ProcessGroup::average_gradients(const std::vector<at::Tensor>& params, size_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / state_->env.world_size;
  size_t begin = 0;
  while (begin < params.size()) {
    // One bucket: consecutive parameters up to bucket_bytes, packed into one flat tensor.
    size_t end = begin, bytes = 0;
    while (end < params.size() && (end == begin || bytes + params[end].nbytes() <= bucket_bytes))
      bytes += params[end++].nbytes();
    std::vector<at::Tensor> pieces;
    for (size_t i = begin; i < end; ++i) {
      const at::Tensor& grad = params[i].grad();
      pieces.push_back(grad.defined() ? grad.reshape({-1}) : torch::zeros({params[i].numel()}, params[i].options()));
    }
    std::vector<at::Tensor> flat = {state_->staged(torch::cat(pieces))};
    state_->wait(state_->group->allreduce(flat), "gradient all-reduce");
    flat[0] = flat[0].to(params[begin].device()).mul_(scale);
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      at::Tensor p = params[i];
      const int64_t n = p.numel();
      at::Tensor mean = flat[0].slice(0, offset, offset + n).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(mean);
      else
        p.mutable_grad() = mean.clone();
      offset += n;
    }
    begin = end;
  }
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& value, const std::string& tag) {
  // Through the store: results are small, and the store's get() honours the same timeout.
  const std::string prefix = "mrcnn/" + tag + "/";
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> values(state_->env.world_size);
  try {
    state_->store->set(prefix + std::to_string(state_->env.rank), std::vector<uint8_t>(value.begin(), value.end()));
    for (int r = 0; r < state_->env.world_size; ++r) {
      const std::vector<uint8_t> bytes = state_->store->get(prefix + std::to_string(r));
      values[r].assign(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(state_->env.rank) + ": gathering '" + tag +
                "' failed: another rank died or hangs; stopping. (" + brief(e) + ")");
  }
  state_->communication_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Once every rank has read every value, each removes its own (the store keeps no history).
  barrier();
  state_->store->deleteKey(prefix + std::to_string(state_->env.rank));
  return values;
}

void ProcessGroup::barrier() { state_->wait(state_->group->barrier(), "barrier"); }

double ProcessGroup::take_communication_seconds() {
  const double seconds = state_->communication_seconds;
  state_->communication_seconds = 0;
  return seconds;
}


struct GradientAverager::Buckets {
  ProcessGroup::State* state = nullptr;
  std::vector<at::Tensor> params;
  struct Bucket {
    std::vector<size_t> members;  // indices into params
    std::vector<int64_t> offsets;
    at::Tensor flat;              // the bucket's gradients, side by side
    size_t ready = 0;
    c10::intrusive_ptr<c10d::Work> work;
    std::vector<at::Tensor> sent;  // what the all-reduce reduces (flat, or its staged copy)
  };
  std::vector<Bucket> buckets;
  std::vector<std::pair<size_t, size_t>> place;  // param -> (bucket, member)
  std::vector<bool> seen;
  size_t next_to_start = 0;
  std::mutex mutex;
  std::chrono::steady_clock::time_point started;

  void start_ready_buckets() {  // in bucket order only, so every rank issues the same sequence
    while (next_to_start < buckets.size() && buckets[next_to_start].ready == buckets[next_to_start].members.size())
      start(buckets[next_to_start++]);
  }
  void start(Bucket& b) {
    b.sent = {state->staged(b.flat)};
    b.work = state->group->allreduce(b.sent);
  }
};

GradientAverager::GradientAverager(ProcessGroup& group, std::vector<at::Tensor> params, size_t bucket_bytes)
    : buckets_(std::make_unique<Buckets>()) {
  Buckets& s = *buckets_;
  s.state = group.state_.get();
  s.params = std::move(params);
  s.place.resize(s.params.size());
  // Reverse order: the last layers' gradients come first in the backward pass.
  size_t bytes = 0;
  for (size_t k = s.params.size(); k-- > 0;) {
    if (s.buckets.empty() || bytes >= bucket_bytes) {
      s.buckets.emplace_back();
      s.buckets.back().offsets.push_back(0);
      bytes = 0;
    }
    Buckets::Bucket& b = s.buckets.back();
    s.place[k] = {s.buckets.size() - 1, b.members.size()};
    b.members.push_back(k);
    b.offsets.push_back(b.offsets.back() + s.params[k].numel());
    bytes += s.params[k].nbytes();
  }
  for (auto& b : s.buckets) b.flat = torch::zeros({b.offsets.back()}, s.params[b.members.front()].options());
  s.seen.assign(s.params.size(), false);
  for (size_t k = 0; k < s.params.size(); ++k) {
    Buckets* self = &s;
    s.params[k].register_hook([self, k](const at::Tensor& grad) {
      std::lock_guard<std::mutex> lock(self->mutex);
      if (self->seen[k]) return grad;  // (a parameter's hook fires once per backward)
      self->seen[k] = true;
      auto [bucket, member] = self->place[k];
      Buckets::Bucket& b = self->buckets[bucket];
      torch::NoGradGuard no_grad;
      b.flat.slice(0, b.offsets[member], b.offsets[member + 1]).view(grad.sizes()).copy_(grad);
      ++b.ready;
      self->start_ready_buckets();
      return grad;
    });
  }
}

GradientAverager::~GradientAverager() = default;

void GradientAverager::prepare() {
  Buckets& s = *buckets_;
  std::lock_guard<std::mutex> lock(s.mutex);
  s.seen.assign(s.params.size(), false);
  for (auto& b : s.buckets) {
    b.ready = 0;
    b.work.reset();
  }
  s.next_to_start = 0;
}

void GradientAverager::finish() {
  Buckets& s = *buckets_;
  const double scale = 1.0 / s.state->env.world_size;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    // Parameters without a gradient this step send zeros.
    for (size_t k = 0; k < s.params.size(); ++k)
      if (!s.seen[k]) {
        const auto [bucket, member] = s.place[k];
        Buckets::Bucket& b = s.buckets[bucket];
        b.flat.slice(0, b.offsets[member], b.offsets[member + 1]).zero_();
      }
    for (; s.next_to_start < s.buckets.size(); ++s.next_to_start) s.start(s.buckets[s.next_to_start]);
  }
  torch::NoGradGuard no_grad;
  for (auto& b : s.buckets) {
    s.state->wait(b.work, "gradient all-reduce");
    at::Tensor mean = b.sent[0].to(b.flat.device()).mul_(scale);
    for (size_t m = 0; m < b.members.size(); ++m) {
      at::Tensor& p = s.params[b.members[m]];
      at::Tensor value = mean.slice(0, b.offsets[m], b.offsets[m + 1]).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(value);
      else
        p.mutable_grad() = value.clone();
    }
  }
}

#else  // built without gloo's headers

struct ProcessGroup::State {};

ProcessGroup::ProcessGroup(const DistributedEnv& env, std::chrono::milliseconds, bool) {
  throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
              ": this mrcnn-train was built without gloo's headers, so it trains in one process only; "
              "install libgloo-dev and rebuild for multi-process training");
}
ProcessGroup::~ProcessGroup() = default;
int ProcessGroup::rank() const { return 0; }
int ProcessGroup::size() const { return 1; }
void ProcessGroup::broadcast(const std::vector<at::Tensor>&, int, std::chrono::milliseconds) {}
void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>&) {}
void ProcessGroup::all_reduce_max(const std::vector<at::Tensor>&) {}
std::string ProcessGroup::backend() const { return "none"; }
void ProcessGroup::average_gradients(const std::vector<at::Tensor>&, size_t) {}
std::vector<std::string> ProcessGroup::all_gather(const std::string& value, const std::string&) { return {value}; }
void ProcessGroup::barrier() {}
double ProcessGroup::take_communication_seconds() { return 0; }

struct GradientAverager::Buckets {};
GradientAverager::GradientAverager(ProcessGroup&, std::vector<at::Tensor>, size_t) {}
GradientAverager::~GradientAverager() = default;
void GradientAverager::prepare() {}
void GradientAverager::finish() {}

#endif

}  // namespace mrcnn::train
