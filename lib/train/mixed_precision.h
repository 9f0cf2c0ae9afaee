// Mixed-precision training on CUDA: autocast of the forward pass to bf16 or fp16, and for fp16
// the dynamic loss scaling of torch.cuda.amp.GradScaler (skip a step whose gradients overflow).
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace mrcnn::train {

class MixedPrecision {
 public:
  // mode: off | bf16 | fp16 (train.amp). Off on any device that is not CUDA.
  MixedPrecision(const std::string& mode, const torch::Device& device);

  bool enabled() const { return enabled_; }
  bool scales_loss() const { return enabled_ && dtype_ == at::kHalf; }

  // Autocast on the CUDA device while alive (nothing when disabled).
  class Scope {
   public:
    explicit Scope(const MixedPrecision& amp);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    bool active_;
  };

  // The loss to call backward() on: multiplied by the current scale for fp16.
  at::Tensor scale(const at::Tensor& loss) const;
  // Divides the gradients by the scale; false when one of them is inf or NaN, in which case
  // the step must be skipped. Always true without loss scaling.
  bool unscale(const std::vector<at::Tensor>& params);
  // After each step: halves the scale after an overflow, doubles it after 2000 clean steps.
  void update(bool overflowed);

  double loss_scale() const { return scale_; }
  int64_t clean_steps() const { return clean_steps_; }
  void restore(double loss_scale, int64_t clean_steps);

 private:
  bool enabled_ = false;
  at::ScalarType dtype_ = at::kFloat;
  double scale_ = 65536.0;
  int64_t clean_steps_ = 0;
};

}  // namespace mrcnn::train
