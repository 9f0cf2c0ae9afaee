#include "model/weights.h"

#include <torch/torch.h>

#include <map>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace mrcnn::model {
namespace {

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string canonical_key(const std::string& key) {
  static const std::regex fpn(R"(^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$)");
  static const std::regex rpn_conv(R"(^rpn\.head\.conv\.(weight|bias)$)");
  static const std::regex mask_fcn(R"(^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$)");
  std::smatch m;
  if (std::regex_match(key, m, fpn)) return m[1].str() + ".0." + m[2].str();
  if (std::regex_match(key, m, rpn_conv)) return "rpn.head.conv.0.0." + m[1].str();
  if (std::regex_match(key, m, mask_fcn))
    return "roi_heads.mask_head." + std::to_string(std::stoi(m[1].str()) - 1) + ".0." + m[2].str();
  return key;
}

StateDict module_state_dict(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& weights, bool allow_partial,
                           const std::string& source) {
  std::map<std::string, at::Tensor> targets;
  for (auto& item : module.named_parameters(true)) targets.emplace(item.key(), item.value());
  for (auto& item : module.named_buffers(true)) targets.emplace(item.key(), item.value());

  LoadReport report;
  std::map<std::string, bool> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [raw_key, tensor] : weights) {
    if (ends_with(raw_key, "num_batches_tracked")) continue;
    const std::string key = canonical_key(raw_key);
    const auto target = targets.find(key);
    if (target == targets.end()) {
      report.unexpected.push_back(raw_key);
      continue;
    }
    seen[key] = true;
    if (target->second.sizes() != tensor.sizes()) {
      report.shape_mismatch.push_back(key + ": expected " + shape_text(target->second.sizes()) + ", found " +
                                      shape_text(tensor.sizes()));
      continue;
    }
    target->second.copy_(tensor.to(target->second.scalar_type()));
    report.loaded.push_back(key);
    if (tensor.is_floating_point() && !torch::isfinite(tensor).all().item<bool>()) report.non_finite.push_back(key);
  }
  // Not an error: the user may know (a diverged run kept for inspection), but such weights detect
  // nothing and would otherwise do so silently.
  if (!report.non_finite.empty())
    log::warn("{}: {} of the loaded tensors hold NaN or infinite values, the first '{}': detections will be empty or "
              "meaningless",
              source, report.non_finite.size(), report.non_finite.front());
  for (const auto& [key, tensor] : targets)
    if (!seen.count(key) && !ends_with(key, "num_batches_tracked")) report.missing.push_back(key);

  if (!allow_partial && !report.complete()) {
    std::string message = source + ": weights do not fit this model (" + std::to_string(report.shape_mismatch.size()) +
                          " shape mismatches, " + std::to_string(report.missing.size()) + " missing, " +
                          std::to_string(report.unexpected.size()) + " unexpected keys)";
    const auto list = [&](const std::vector<std::string>& items, const std::string& what) {
      for (size_t i = 0; i < items.size() && i < 5; ++i) message += "\n" + source + ": " + what + items[i];
    };
    list(report.shape_mismatch, "shape mismatch: ");
    list(report.missing, "missing: ");
    list(report.unexpected, "unexpected: ");
    if (!report.shape_mismatch.empty() &&
        report.shape_mismatch.front().find("box_predictor") != std::string::npos)
      message += "\n" + source + ": the class predictors differ: does model.num_classes match the weights? "
                 "(to fine-tune on other classes, load with --allow-partial)";
    throw Error(message);
  }
  return report;
}

void warn_if_partial(const LoadReport& report, const std::string& source) {
  if (report.complete()) return;
  log::warn("{}: loaded {} tensors; skipped {} with other shapes, {} missing (left at their initial values), {} "
            "unexpected",
            source, report.loaded.size(), report.shape_mismatch.size(), report.missing.size(), report.unexpected.size());
}

at::Tensor rgb_filters_to_bands(const at::Tensor& rgb, int64_t bands) {
  TORCH_CHECK(rgb.dim() == 4 && rgb.size(1) == 3, "expected RGB filters (out, 3, kh, kw), got ", rgb.sizes());
  if (bands == 1) return rgb.sum(1, /*keepdim=*/true);
  std::vector<at::Tensor> filters;
  for (int64_t band = 0; band < bands; ++band)
    filters.push_back(band < 3 ? rgb.narrow(1, band, 1) : rgb.mean(1, /*keepdim=*/true));
  return torch::cat(filters, 1) * (3.0 / static_cast<double>(bands));
}

}  // namespace mrcnn::model
