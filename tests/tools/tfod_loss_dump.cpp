// Test helper: the TF OD API family's training losses (model/tfod_losses) for
// tests/reference/test_tfod_loss_parity.py, twice: on the reference's own prediction dict (so the
// targets, samplers and loss functions are checked alone), and from our training forward pass
// (model/tfod_training) with the weights of a TF OD API checkpoint on the reference's
// preprocessed batch. IN.pt (torch.save'd dict): "preprocessed" (B, H, W, 3), "true_shapes" (B, 2),
// the reference's predictions ("rpn_box_encodings", "rpn_objectness", "anchors", "proposal_boxes",
// "num_proposals", "refined_box_encodings", "class_logits", "mask_logits") and per image i
// "boxes{i}" (normalised), "classes{i}" (from 1), "masks{i}". Writes each term under "tf/" and
// "ours/" with torch::pickle_save.
// Usage: tfod_loss_dump CHECKPOINT IN.pt OUT.pt --pipeline CONFIG [--classes K] [--proposals P]
//        [--size S]   (the samplers' sizes and loss weights: the pipeline.config's)
#include <torch/serialize.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "config/tf_faster_rcnn.h"
#include "io/text_proto.h"
#include "io/weights_file.h"
#include "model/tfod_losses.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_ops.h"
#include "model/tfod_training.h"
#include "model/tfod_weights.h"

using namespace mrcnn;

namespace {

using Tensors = std::map<std::string, at::Tensor>;

struct Options {
  model::TfodSettings model;
  model::TfodLossSettings loss;
};

// The model and loss settings of the pipeline.config (--pipeline, first), then reference.py's
// overrides (classes, proposals, fixed resizer).
Options parse(int argc, char** argv) {
  Options o;
  for (int i = 4; i < argc; ++i) {
    const std::string flag = argv[i];
    auto next = [&] { return std::string(argv[++i]); };
    if (flag == "--pipeline") {
      const std::string path = next();
      const Json resolved = config::resolved_tf_faster_rcnn_config(read_text_proto_file(path), path);
      o.model = model::tfod_settings_from_config(resolved);
      o.loss = model::tfod_loss_settings_from_config(resolved);
    } else if (flag == "--classes") {
      o.model.num_classes = std::stoll(next());
    } else if (flag == "--proposals") {
      o.model.first_stage_max_proposals = std::stoll(next());
    } else if (flag == "--size") {
      o.model.resizer.height = o.model.resizer.width = std::stoll(next());
    } else {
      throw std::runtime_error("unknown flag " + flag);
    }
  }
  return o;
}

// Each image's groundtruth, boxes made absolute in the padded input as _format_groundtruth_data.
std::vector<model::TfodGroundtruth> groundtruth(const Tensors& in, int64_t images, float height, float width) {
  std::vector<model::TfodGroundtruth> out;
  for (int64_t i = 0; i < images; ++i) {
    const std::string n = std::to_string(i);
    out.push_back({model::tfod_scale_boxes(in.at("boxes" + n).to(at::kFloat), height, width),
                   in.at("classes" + n).to(at::kLong), at::Tensor(), in.at("masks" + n).to(at::kFloat)});
  }
  return out;
}

void put_terms(c10::Dict<std::string, at::Tensor>& out, const std::string& prefix, const model::TfodLossTerms& t) {
  out.insert(prefix + "rpn_localization", t.rpn_localization);
  out.insert(prefix + "rpn_objectness", t.rpn_objectness);
  out.insert(prefix + "box_localization", t.box_localization);
  out.insert(prefix + "box_classification", t.box_classification);
  out.insert(prefix + "mask", t.mask);
}

// The losses on the reference's own predictions.
model::TfodLossTerms on_reference(const Tensors& in, const std::vector<model::TfodGroundtruth>& gt,
                                   const model::TfodLossSettings& settings, float height, float width) {
  model::TfodBoxClassifierBatch batch{in.at("refined_box_encodings"), in.at("class_logits"), in.at("proposal_boxes"),
                                       in.at("num_proposals").to(at::kLong), in.at("mask_logits"), {height, width}};
  return model::tfod_losses(in.at("rpn_box_encodings"), in.at("rpn_objectness"), in.at("anchors"), batch, gt, settings);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: tfod_loss_dump CHECKPOINT IN.pt OUT.pt --pipeline CONFIG [flags]\n";
    return 2;
  }
  try {
    const Options options = parse(argc, argv);
    Tensors in;
    for (const auto& [name, tensor] : read_weights_file(argv[2])) in[name] = tensor;
    c10::InferenceMode guard;
    const at::Tensor pixels = in.at("preprocessed").to(at::kFloat).permute({0, 3, 1, 2}).contiguous();
    const int64_t images = pixels.size(0);
    const float height = static_cast<float>(pixels.size(2)), width = static_cast<float>(pixels.size(3));
    const std::vector<model::TfodGroundtruth> gt = groundtruth(in, images, height, width);
    c10::Dict<std::string, at::Tensor> out;
    put_terms(out, "tf/", on_reference(in, gt, options.loss, height, width));
    model::TfodMaskRcnn net(options.model);
    model::load_tfod_mask_rcnn_from_tf(argv[1], *net);
    net->eval();
    std::vector<std::array<float, 2>> true_shapes;
    const at::Tensor shapes = in.at("true_shapes").to(at::kFloat);
    for (int64_t i = 0; i < images; ++i) true_shapes.push_back({shapes[i][0].item<float>(), shapes[i][1].item<float>()});
    const model::TfodTrainingPredictions p = model::tfod_training_forward(*net, pixels, true_shapes, gt, options.loss);
    put_terms(out, "ours/", model::tfod_losses(p.rpn_box_encodings, p.rpn_objectness, p.anchors, p.box_classifier, gt,
                                                options.loss));
    out.insert("ours/anchors", p.anchors);
    out.insert("ours/rpn_box_encodings", p.rpn_box_encodings);
    out.insert("ours/rpn_objectness", p.rpn_objectness);
    out.insert("ours/proposal_boxes", p.box_classifier.proposals);
    out.insert("ours/num_proposals", p.box_classifier.num_proposals);
    out.insert("ours/refined_box_encodings", p.box_classifier.refined_box_encodings);
    out.insert("ours/class_logits", p.box_classifier.class_logits);
    if (p.box_classifier.mask_logits.defined()) out.insert("ours/mask_logits", p.box_classifier.mask_logits);
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(out));
    std::ofstream(argv[3], std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } catch (const std::exception& e) {
    std::cerr << "tfod_loss_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
