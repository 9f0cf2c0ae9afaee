// Test helper: the TF OD API Mask R-CNN family (model/tfod_mask_rcnn) loaded from a TF OD API
// checkpoint, run on a torch.save'd dict of inputs, every stage's outputs written with
// torch::pickle_save for tests/reference/test_tfod_mask_rcnn_parity.py. Inputs: "image" (1, H, W,
// 3) float pixels; optionally the reference's own intermediate tensors, so that each stage can
// also be checked on exactly the reference's inputs ("tf/..." keys: rpn_box_encodings,
// rpn_objectness, anchors -> proposals; proposals -> box classifier; refined_box_encodings,
// class_logits, proposals -> detections; detection_boxes -> mask logits; detection_masks,
// detection_boxes -> masks reframed into the image).
// Usage: tfod_dump CHECKPOINT IN.pt OUT.pt [--pipeline CONFIG] [--classes K] [--proposals P]
//                  [--size S | --keep-aspect MIN MAX [--pad]] [--time RUNS] [--prepare]
#include <torch/serialize.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "config/tf_faster_rcnn.h"
#include "core/cpu_allocator.h"
#include "eval/rle.h"
#include "io/text_proto.h"
#include "io/weights_file.h"
#include "model/tfod_detect.h"
#include "model/tfod_mask_rcnn.h"
#include "model/tfod_weights.h"

using namespace mrcnn;
using model::TfodSettings;

namespace {

using Tensors = std::map<std::string, at::Tensor>;

at::Tensor nhwc(const at::Tensor& nchw) { return nchw.permute({0, 2, 3, 1}).contiguous(); }

// The model's settings: a pipeline.config's (--pipeline) or the defaults, then the flags' overrides
// (as reference.py overrides the config's classes, proposals and resizer).
TfodSettings parse_settings(int argc, char** argv) {
  TfodSettings settings;
  for (int i = 4; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--pipeline") settings = model::tfod_settings_from_config(
        config::resolved_tf_faster_rcnn_config(read_text_proto_file(argv[i + 1]), argv[i + 1]));
  for (int i = 4; i < argc; ++i) {
    const std::string flag = argv[i];
    auto next = [&] { return std::stoll(argv[++i]); };
    if (flag == "--pipeline" || flag == "--time") ++i;
    else if (flag == "--prepare") continue;  // main's
    else if (flag == "--classes") settings.num_classes = next();
    else if (flag == "--proposals") settings.first_stage_max_proposals = next();
    else if (flag == "--size") settings.resizer.height = settings.resizer.width = next();
    else if (flag == "--pad") settings.resizer.pad_to_max_dimension = true;
    else if (flag == "--keep-aspect") {
      settings.resizer.keep_aspect = true;
      settings.resizer.min_dimension = next();
      settings.resizer.max_dimension = next();
    } else {
      throw std::runtime_error("unknown flag " + flag);
    }
  }
  return settings;
}

void put_selection(c10::Dict<std::string, at::Tensor>& out, const std::string& prefix, const model::TfodSelection& s) {
  out.insert(prefix + "boxes", s.boxes);
  out.insert(prefix + "scores", s.scores);
  out.insert(prefix + "classes", s.classes);
  out.insert(prefix + "rows", s.rows);
}

// What mrcnn-infer would report: boxes (x1, y1, x2, y2 pixels), scores, labels, masks decoded
// from their RLE (M, H, W).
void put_instances(c10::Dict<std::string, at::Tensor>& out, const eval::ImageDetections& detections) {
  const auto count = static_cast<int64_t>(detections.instances.size());
  at::Tensor boxes = torch::empty({count, 4}), scores = torch::empty({count}), labels = torch::empty({count}, torch::kLong);
  at::Tensor masks = torch::empty({count, detections.height, detections.width}, torch::kByte);
  for (int64_t i = 0; i < count; ++i) {
    const eval::Instance& instance = detections.instances[i];
    for (int k = 0; k < 4; ++k) boxes[i][k] = instance.box[k];
    scores[i] = instance.score;
    labels[i] = instance.label;
    const std::vector<uint8_t> mask = eval::decode_rle(instance.mask);
    std::memcpy(masks[i].data_ptr<uint8_t>(), mask.data(), mask.size());
  }
  out.insert("instances/boxes", boxes);
  out.insert("instances/scores", scores);
  out.insert("instances/labels", labels);
  out.insert("instances/masks", masks);
}

// Our whole pipeline on the image.
void run_own(model::TfodMaskRcnn& net, const at::Tensor& image, c10::Dict<std::string, at::Tensor>& out) {
  const model::TfodOutputs o = net->forward(image);
  out.insert("preprocessed", nhwc(o.input.pixels));
  out.insert("block17_20_ac", nhwc(o.rpn.features));
  out.insert("anchors", o.rpn.anchors);
  out.insert("rpn_box_encodings", o.rpn.box_encodings);
  out.insert("rpn_objectness", o.rpn.objectness);
  put_selection(out, "proposals/", o.proposals);
  out.insert("refined_box_encodings", o.box_classifier.refined_box_encodings);
  out.insert("class_logits", o.box_classifier.class_logits);
  put_selection(out, "detections/", o.detections);
  out.insert("mask_logits", o.mask_logits);
  out.insert("masks", o.masks);
  out.insert("image_masks", model::tfod_reframe_masks(o.masks, o.detections.boxes, image.size(2), image.size(3)));
  put_instances(out, model::tfod_detect_instances(*net, image, 0.0f));
}

// Each stage on the reference's own inputs.
void run_on_reference(model::TfodMaskRcnn& net, const Tensors& in, const at::Tensor& image,
                      c10::Dict<std::string, at::Tensor>& out) {
  const model::TfodInput input = net->preprocess(image);
  const at::Tensor features = net->rpn(input.pixels).features;
  const TfodSettings& s = net->settings();
  put_selection(out, "tf/proposals/",
                model::tfod_proposals(in.at("tf/rpn_box_encodings"), in.at("tf/rpn_objectness"), in.at("tf/anchors"), s,
                                      input.true_shape, input.padded_shape));
  const model::TfodBoxClassifierOutput classified = net->classify(features, in.at("tf/proposals"));
  out.insert("tf/box_classifier_features", nhwc(classified.features));
  out.insert("tf/refined_box_encodings", classified.refined_box_encodings);
  out.insert("tf/class_logits", classified.class_logits);
  put_selection(out, "tf/detections/",
                model::tfod_detections(in.at("tf/refined_box_encodings"), in.at("tf/class_logits"),
                                       in.at("tf/proposals"), s, input.true_shape, input.padded_shape));
  out.insert("tf/mask_logits", net->mask_logits(features, in.at("tf/detection_boxes")));
  out.insert("tf/image_masks", model::tfod_reframe_masks(in.at("tf/detection_masks"), in.at("tf/detection_boxes"),
                                                         image.size(2), image.size(3)));
}

// Seconds per whole-model forward, `runs` times on the image, as inference runs it (batch norms
// folded, channels-last, the caching CPU allocator), and the process's peak memory, as one JSON line.
void print_timing(model::TfodMaskRcnn& net, const at::Tensor& image, int runs) {
  core::install_caching_cpu_allocator();  // the crops' large temporaries, reused instead of page-faulted
  net->prepare_for_inference();
  std::cout << "{\"seconds\": [";
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const model::TfodOutputs o = net->forward(image);
    std::cout << (i ? ", " : "") << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << "], \"peak_mb\": " << usage.ru_maxrss / 1024.0 << "}\n";
}

int time_runs(int argc, char** argv) {
  for (int i = 4; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--time") return std::stoi(argv[i + 1]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: tfod_dump CHECKPOINT IN.pt OUT.pt [--pipeline CONFIG] [--classes K] [--proposals P] "
                 "[--size S | --keep-aspect MIN MAX [--pad]]\n";
    return 2;
  }
  try {
    model::TfodMaskRcnn net(parse_settings(argc, argv));
    model::load_tfod_mask_rcnn_from_tf(argv[1], *net);
    net->eval();
    Tensors in;
    for (const auto& [name, tensor] : read_weights_file(argv[2])) in[name] = tensor;
    c10::InferenceMode guard;
    const at::Tensor image = in.at("image").to(at::kFloat).permute({0, 3, 1, 2}).contiguous();
    if (const int runs = time_runs(argc, argv)) {
      print_timing(net, image, runs);
      return 0;
    }
    // As mrcnn-infer runs it (norms folded, channels-last): the same arithmetic, for its CLI test.
    if (std::find(argv + 4, argv + argc, std::string("--prepare")) != argv + argc) net->prepare_for_inference();
    c10::Dict<std::string, at::Tensor> out;
    run_own(net, image, out);
    if (in.count("tf/proposals")) run_on_reference(net, in, image, out);
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(out));
    std::ofstream(argv[3], std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } catch (const std::exception& e) {
    std::cerr << "tfod_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
