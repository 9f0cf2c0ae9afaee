#include "train/step.h"

#include <torch/torch.h>

#include <cstring>

#include "model/detect.h"
#include "train/distributed.h"

namespace mrcnn::train {
namespace {

// The all-reduce's layout: images, stop flags, then each loss's sum and count. The one place
// that knows the positions.
std::vector<double> pack(const StepTotals& totals) {
  std::vector<double> out = {totals.images, totals.stop_requested ? 1.0 : 0.0, totals.out_of_time ? 1.0 : 0.0};
  for (const LossSum& loss : totals.losses) {
    out.push_back(loss.sum);
    out.push_back(loss.count);
  }
  return out;
}

StepTotals unpack(const double* values) {
  StepTotals totals;
  totals.images = values[0];
  totals.stop_requested = values[1] > 0;
  totals.out_of_time = values[2] > 0;
  for (size_t k = 0; k < totals.losses.size(); ++k) totals.losses[k] = {values[3 + 2 * k], values[4 + 2 * k]};
  return totals;
}

// Each loss's sum on the device, as a float64 scalar (undefined: no such term this step).
std::vector<at::Tensor> device_sums(const std::map<std::string, model::LossTerm>& terms) {
  std::vector<at::Tensor> sums;
  for (const char* name : kLossNames) {
    const auto it = terms.find(name);
    sums.push_back(it == terms.end() ? at::Tensor() : it->second.sum.detach().to(torch::kFloat64).reshape({1}));
  }
  return sums;
}

// Copies the sums to the host (waits for the forward pass) into totals.
void read_sums(const std::vector<at::Tensor>& sums, StepTotals& totals) {
  std::vector<at::Tensor> defined;
  for (const auto& t : sums)
    if (t.defined()) defined.push_back(t);
  if (defined.empty()) return;
  const at::Tensor host = torch::cat(defined).cpu();
  for (size_t k = 0, next = 0; k < sums.size(); ++k)
    if (sums[k].defined()) totals.losses[k].sum = host[static_cast<int64_t>(next++)].item<double>();
}

}  // namespace

double StepTotals::total_loss() const {
  double total = 0;
  for (const LossSum& loss : losses) total += loss.mean();
  return total;
}

StagedBatch stage_batch(data::Loader& loader, int64_t step, bool pinned) {
  StagedBatch out;
  out.samples = loader.batch(step);  // this process's part of the global batch
  const auto host = torch::TensorOptions().pinned_memory(pinned);
  for (auto& s : out.samples) {
    const cv::Mat image = s.image.isContinuous() ? s.image : s.image.clone();
    at::Tensor pixels = torch::empty({image.rows, image.cols, image.channels()}, host.dtype(model::pixel_dtype(image)));
    std::memcpy(pixels.data_ptr(), image.data, static_cast<size_t>(pixels.nbytes()));
    const auto g = static_cast<int64_t>(s.boxes.size());
    model::Target t;
    t.boxes = torch::empty({g, 4}, host.dtype(torch::kFloat));
    t.labels = torch::empty({g}, host.dtype(torch::kLong));
    t.masks = torch::empty({g, s.height, s.width}, host.dtype(torch::kUInt8));
    float* boxes = t.boxes.data_ptr<float>();
    int64_t* labels = t.labels.data_ptr<int64_t>();
    auto* masks = t.masks.data_ptr<uint8_t>();
    const auto plane = static_cast<size_t>(s.height * s.width);
    for (int64_t k = 0; k < g; ++k) {
      std::copy(s.boxes[k].begin(), s.boxes[k].end(), boxes + 4 * k);
      labels[k] = s.labels[k];
      const cv::Mat& m = s.masks[k];
      std::memcpy(masks + k * plane, (m.isContinuous() ? m : m.clone()).data, plane);
    }
    out.pixels.push_back(std::move(pixels));
    out.targets.push_back(std::move(t));
    s.image.release();
    s.masks.clear();
  }
  return out;
}

struct TrainStep::Inputs {
  std::vector<at::Tensor> images;
  std::vector<model::Target> targets;
  std::vector<model::ImageSize> sizes;
};

TrainStep::TrainStep(TrainableModel& net, torch::optim::Optimizer& optimizer, std::vector<at::Tensor> params,
                     MixedPrecision& amp, ProcessGroup* group, StepOptions options)
    : net_(net), optimizer_(optimizer), params_(std::move(params)), amp_(amp), group_(group), options_(options) {
  if (group_) averager_ = std::make_unique<GradientAverager>(*group_, params_);
}

TrainStep::~TrainStep() = default;

TrainStep::Inputs TrainStep::upload(const StagedBatch& staged, int64_t step) const {
  const torch::Device& device = options_.device;
  const bool pinned = device.is_cuda();
  Inputs in;
  for (size_t k = 0; k < staged.samples.size(); ++k) {
    const data::Sample& s = staged.samples[k];
    in.images.push_back(net_.image(staged.pixels[k], device, options_.dtype));
    const model::Target& t = staged.targets[k];
    // Every random choice for an image (multi-scale size, sampling) comes from (seed, step, its
    // place in the global batch): the same whichever process trains on it.
    const uint64_t image_seed =
        model::derived_seed(options_.seed, static_cast<uint64_t>(step) * 4096 + s.batch_position) | 1;
    in.targets.push_back({t.boxes.to(device, pinned).to(options_.dtype), t.labels.to(device, pinned),
                          t.masks.to(device, pinned), image_seed});
    in.sizes.emplace_back(s.height, s.width);
  }
  return in;
}

// Each process pads and pools its images as the whole global batch would be.
model::BatchShape TrainStep::global_batch_shape(const Inputs& in) const {
  model::BatchShape shape;
  if (!group_) return shape;
  if (!in.sizes.empty()) shape = net_.batch_shape(in.sizes, in.targets);
  const at::Tensor sides = torch::tensor(
      {shape.padded.first, shape.padded.second, shape.largest.first, shape.largest.second}, torch::kLong);
  group_->all_reduce_max({sides});
  return {{sides[0].item<int64_t>(), sides[1].item<int64_t>()}, {sides[2].item<int64_t>(), sides[3].item<int64_t>()}};
}

StepTotals TrainStep::run(const StagedBatch& staged, int64_t step, double lr, const StopRequest& stop) {
  Inputs in = upload(staged, step);
  const model::BatchShape shape = global_batch_shape(in);
  if (group_ && options_.broadcast_buffers) group_->broadcast(net_.module().buffers(), 0);
  for (auto& g : optimizer_.param_groups()) g.options().set_lr(lr);
  std::map<std::string, model::LossTerm> terms;
  if (!staged.samples.empty()) {
    MixedPrecision::Scope autocast(amp_);
    terms = net_.loss_terms(in.images, std::move(in.targets), shape);
  }
  // One all-reduce per step: the images, each loss's sum and count over the global batch, and
  // whether any process was asked to stop.
  StepTotals totals;
  totals.images = static_cast<double>(staged.samples.size());
  const StopFlags flags = stop.now();
  totals.stop_requested = flags.signalled;
  totals.out_of_time = flags.out_of_time;
  for (size_t k = 0; k < kLossNames.size(); ++k) {
    const auto it = terms.find(kLossNames[k]);
    totals.losses[k].count = it == terms.end() ? 0.0 : it->second.count;
  }
  const std::vector<at::Tensor> sums = device_sums(terms);
  // Reading the sums waits for the forward pass. With several processes they travel in the step's
  // one all-reduce, so they are read now; one process reads them once backward and the optimizer
  // step are queued, so that the GPU does not idle while the host queues backward.
  if (group_) {
    read_sums(sums, totals);
    const at::Tensor reduced = torch::tensor(pack(totals), torch::kFloat64);
    group_->all_reduce_sum({reduced});
    totals = unpack(reduced.data_ptr<double>());
  }
  backward_and_step(terms, totals, !staged.samples.empty());
  if (!group_) read_sums(sums, totals);
  return totals;
}

void TrainStep::backward_and_step(const std::map<std::string, model::LossTerm>& terms, const StepTotals& totals,
                                  bool has_images) {
  const double world = group_ ? group_->size() : 1;
  at::Tensor total = torch::zeros({}, torch::TensorOptions(options_.device));
  for (size_t k = 0; k < kLossNames.size(); ++k) {
    // Scaled so that averaging the processes' gradients gives the gradient of the global mean.
    const double global_count = std::max(totals.losses[k].count, 1.0);
    const auto it = terms.find(kLossNames[k]);
    if (it != terms.end()) total = total + it->second.sum.to(torch::kFloat) * (world / global_count);
  }
  if (totals.images <= 0) return;  // every image of this step was skipped as invalid (data.on_invalid skip)
  optimizer_.zero_grad();
  if (averager_) averager_->prepare();
  if (has_images) amp_.scale(total).backward();
  if (averager_) averager_->finish();
  const bool finite_gradients = amp_.unscale(params_);
  if (finite_gradients) {
    if (options_.grad_clip_norm > 0) torch::nn::utils::clip_grad_norm_(params_, options_.grad_clip_norm);
    optimizer_.step();
  }
  amp_.update(!finite_gradients);
}

}  // namespace mrcnn::train
