#include "ops/roi_align.h"

#include <torch/autograd.h>

#include "ops/aten/roi_align_aten.h"
#include "ops/cpu/roi_align_kernel.h"
#include "ops/reduced_precision.h"
#if MRCNN_WITH_CUDA_KERNELS
#include "ops/cuda/roi_align_kernel.h"
#endif

namespace mrcnn::ops {
namespace {

at::Tensor forward_on_device(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                             int64_t output_w, int64_t sampling_ratio, bool aligned) {
#if MRCNN_WITH_CUDA_KERNELS
  if (input.is_cuda())
    return cuda::roi_align_forward(input, rois, spatial_scale, output_h, output_w, sampling_ratio, aligned);
#endif
  return cpu::roi_align_forward(input, rois, spatial_scale, output_h, output_w, sampling_ratio, aligned);
}

at::Tensor backward_on_device(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                              int64_t output_w, const std::vector<int64_t>& shape, int64_t sampling_ratio,
                              bool aligned) {
#if MRCNN_WITH_CUDA_KERNELS
  if (grad.is_cuda())
    return cuda::roi_align_backward(grad, rois, spatial_scale, output_h, output_w, shape[0], shape[1], shape[2],
                                    shape[3], sampling_ratio, aligned);
#endif
  return cpu::roi_align_backward(grad, rois, spatial_scale, output_h, output_w, shape[0], shape[1], shape[2],
                                 shape[3], sampling_ratio, aligned);
}

// Whether this input's device has a kernel of ours (else: the ATen-op path). The kernels take
// float and double; bf16/fp16 inputs run on them in float32.
bool has_kernel(const at::Tensor& input) {
  if (input.is_cpu()) return true;
#if MRCNN_WITH_CUDA_KERNELS
  return input.is_cuda();
#else
  return false;
#endif
}

class RoiAlignFunction : public torch::autograd::Function<RoiAlignFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& rois,
                            double spatial_scale, int64_t output_h, int64_t output_w, int64_t sampling_ratio,
                            bool aligned) {
    ctx->save_for_backward({rois});
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["output_h"] = output_h;
    ctx->saved_data["output_w"] = output_w;
    ctx->saved_data["sampling_ratio"] = sampling_ratio;
    ctx->saved_data["aligned"] = aligned;
    ctx->saved_data["input_shape"] = input.sizes();
    return forward_on_device(input, rois, spatial_scale, output_h, output_w, sampling_ratio, aligned);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const at::Tensor rois = ctx->get_saved_variables()[0];
    const auto shape = ctx->saved_data["input_shape"].toIntVector();
    const at::Tensor grad = grad_outputs[0];
    at::Tensor grad_input =
        backward_on_device(grad, rois, ctx->saved_data["spatial_scale"].toDouble(), ctx->saved_data["output_h"].toInt(),
                           ctx->saved_data["output_w"].toInt(), shape, ctx->saved_data["sampling_ratio"].toInt(),
                           ctx->saved_data["aligned"].toBool());
    return {grad_input, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t output_h,
                     int64_t output_w, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(input.dim() == 4, "roi_align: input must be (N, C, H, W), got ", input.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_align: rois must be (K, 5), got ", rois.sizes());
  // bf16/fp16 (autocast): pooled in float32 on our kernels and returned in the input's type, as
  // torchvision's autocast rule for roi_align does. (The ATen path in bf16 was slow and, for the
  // mask targets of training, synchronised with the host once per distinct ROI size.)
  if (has_kernel(input) && (is_reduced_precision(input) || is_reduced_precision(rois)))
    return roi_align(input.to(at::kFloat), rois.to(at::kFloat), spatial_scale, output_h, output_w, sampling_ratio,
                     aligned)
        .to(input.scalar_type());
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), "roi_align: input and rois must have the same dtype");
  // Devices without a kernel of ours take the ATen-op path, which autograd differentiates by itself.
  if (!has_kernel(input))
    return aten::roi_align(input, rois, spatial_scale, output_h, output_w, sampling_ratio, aligned);
  if (!input.requires_grad())
    return forward_on_device(input, rois, spatial_scale, output_h, output_w, sampling_ratio, aligned);
  return RoiAlignFunction::apply(input, rois, spatial_scale, output_h, output_w, sampling_ratio, aligned);
}

}  // namespace mrcnn::ops
