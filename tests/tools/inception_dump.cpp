// Test and benchmark helper: the Inception-ResNet-v2 backbone loaded from a TF OD API checkpoint,
// run on inputs from a torch.save'd dict ("image": preprocessed NHWC, optional "crops": NHWC
// block17_20_ac crops), its outputs written NHWC with torch::pickle_save (block17_20_ac,
// box_classifier_features), for tests/reference/test_inception_parity.py and
// scripts/bench_inception.py. --runs N times the first stage N times, as inference runs it (batch
// norms folded, NHWC), and prints one JSON line: seconds per run, resident memory before the first
// forward and the process's peak.
#include <torch/serialize.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

#include "io/weights_file.h"
#include "model/inception_resnet_v2.h"
#include "model/tf_weights.h"

using namespace mrcnn;

namespace {

at::Tensor nchw(const at::Tensor& nhwc) { return nhwc.to(torch::kFloat).permute({0, 3, 1, 2}).contiguous(); }
at::Tensor nhwc(const at::Tensor& nchw) { return nchw.permute({0, 2, 3, 1}).contiguous(); }

// Seconds per first-stage forward of `image`, each timed on its own.
std::vector<double> time_first_stage(model::InceptionResnetV2FirstStage& first, const at::Tensor& image, int runs) {
  std::vector<double> seconds;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    first(image);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return seconds;
}

// Resident set size now (VmRSS), in MiB.
double resident_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

void print_timing(model::InceptionResnetV2FirstStage& first, const at::Tensor& image, int runs) {
  first->fold_for_inference();
  for (auto& param : first->parameters())
    if (param.dim() == 4) param.set_data(param.contiguous(at::MemoryFormat::ChannelsLast));
  const at::Tensor input = image.contiguous(at::MemoryFormat::ChannelsLast);
  const double before = resident_mb();
  const auto seconds = time_first_stage(first, input, runs);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << "{\"seconds\": [";
  for (size_t i = 0; i < seconds.size(); ++i) std::cout << (i ? ", " : "") << seconds[i];
  std::cout << "], \"rss_before_mb\": " << before << ", \"peak_mb\": " << usage.ru_maxrss / 1024.0 << "}\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 6 && std::string(argv[4]) == "--runs")) {
    std::cerr << "usage: inception_dump CHECKPOINT INPUTS.pt OUT.pt [--runs N]\n";
    return 2;
  }
  try {
    model::InceptionResnetV2FirstStage first;
    model::InceptionResnetV2SecondStage second;
    model::load_inception_resnet_v2_from_tf(argv[1], *first, *second);
    first->eval();
    second->eval();
    std::map<std::string, at::Tensor> inputs;
    for (const auto& [name, tensor] : read_weights_file(argv[2])) inputs[name] = tensor;

    c10::InferenceMode guard;
    const at::Tensor image = nchw(inputs.at("image"));
    if (argc == 6) {
      print_timing(first, image, std::stoi(argv[5]));
      return 0;
    }
    c10::Dict<std::string, at::Tensor> out;
    out.insert("block17_20_ac", nhwc(first(image)));
    if (inputs.count("crops")) out.insert("box_classifier_features", nhwc(second(nchw(inputs.at("crops")))));
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(out));
    std::ofstream(argv[3], std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  } catch (const std::exception& e) {
    std::cerr << "inception_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
