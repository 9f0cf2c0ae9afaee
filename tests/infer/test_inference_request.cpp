// mrcnn-infer's request turned into detector options and a job: flags over the configuration's
// infer.* keys, the class names' precedence, the images each source gives, the --dataset checks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "config/config.h"
#include "core/error.h"
#include "infer/image_lists.h"
#include "infer/inference_request.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mrcnn::Json;
using mrcnn::infer::InferenceRequest;

namespace {

Json resolved_config(const std::string& train_label_map = "") {
  Json doc = Json::parse(R"({
    "infer": {"device": "cpu", "score_threshold": 0.25, "batch_size": 3, "precision": "bf16"},
    "data": {"on_invalid": "fail", "max_image_pixels": 5000, "val": {"format": "mask_png"}}
  })");
  doc["data"]["train"]["label_map"] = train_label_map;
  return mrcnn::config::resolve(doc);
}

// Two images in a folder given out of order, and a label map naming class 1 `name`.
struct Files {
  fs::path dir = mrcnn::testing::fresh_temp_dir("inference_request");
  std::string b = (dir / "b.png").string(), a = (dir / "a.png").string();

  Files() {
    const cv::Mat pixels(8, 8, CV_8UC3, cv::Scalar(10, 20, 30));
    cv::imwrite(b, pixels);
    cv::imwrite(a, pixels);
  }
  std::string label_map(const std::string& name) const {
    const std::string path = (dir / (name + ".json")).string();
    std::ofstream(path) << "{\"1\": \"" << name << "\"}";
    return path;
  }
};

InferenceRequest request_for(const Files& files) {
  InferenceRequest request;
  request.weights = "w.safetensors";
  request.inputs = {files.b, files.a};
  request.output = (files.dir / "out.json").string();
  return request;
}

}  // namespace

TEST_CASE("inference request: the configuration's infer keys unless a flag is given", "[infer][request]") {
  const Files files;
  const Json config = resolved_config();
  InferenceRequest request = request_for(files);
  auto options = mrcnn::infer::detector_options(config, request);
  CHECK(options.device.kind == mrcnn::DeviceSpec::Kind::Cpu);
  CHECK(options.precision == "bf16");
  CHECK(options.weights == "w.safetensors");
  auto job = mrcnn::infer::inference_job(config, request);
  CHECK(job.score_threshold == 0.25f);
  CHECK(job.overlay_style.score_threshold == 0.25f);
  CHECK(job.batch_size == 3);
  CHECK_FALSE(job.skip_unreadable);

  request.precision = "fp32";
  request.threads = 2;
  request.allow_partial = true;
  request.score_threshold = 0;
  request.batch_size = 1;
  request.skip_unreadable = true;
  request.max_image_pixels = 77;
  options = mrcnn::infer::detector_options(config, request);
  CHECK(options.precision == "fp32");
  CHECK(options.threads == 2);
  CHECK(options.allow_partial);
  job = mrcnn::infer::inference_job(config, request);
  CHECK(job.score_threshold == 0.0f);
  CHECK(job.batch_size == 1);
  CHECK(job.skip_unreadable);
  CHECK(job.max_image_pixels == 77);
}

TEST_CASE("inference request: infer.precision is auto unless the configuration or --precision says", "[infer][request]") {
  const Files files;
  InferenceRequest request = request_for(files);
  request.device = "cpu";
  const Json defaults = mrcnn::config::resolve(Json::object());
  CHECK(defaults["infer"]["precision"] == "auto");
  CHECK(mrcnn::infer::detector_options(defaults, request).precision == "auto");
  CHECK(mrcnn::infer::detector_options(resolved_config(), request).precision == "bf16");
  request.precision = "fp32";
  CHECK(mrcnn::infer::detector_options(defaults, request).precision == "fp32");
}

TEST_CASE("inference request: --input images get ids 1..N in sorted path order", "[infer][request]") {
  const Files files;
  const auto job = mrcnn::infer::inference_job(resolved_config(), request_for(files));
  REQUIRE(job.images.size() == 2);
  CHECK(job.images[0].id == 1);
  CHECK(job.images[0].path == files.a);
  CHECK(job.images[0].file_name == files.a);
  CHECK(job.images[1].id == 2);
  CHECK(job.images[1].path == files.b);
}

TEST_CASE("inference request: class names from --label-map, else the model, else data.train", "[infer][request]") {
  const Files files;
  const std::string train_map = files.label_map("train_name");
  InferenceRequest request = request_for(files);
  CHECK(mrcnn::infer::inference_job(resolved_config(train_map), request).labels.name(1) == "train_name");
  CHECK(mrcnn::infer::inference_job(resolved_config(), request).labels.empty());

  request.model_labels = mrcnn::data::LabelMap();
  request.model_labels->set(1, "model_name");
  CHECK(mrcnn::infer::inference_job(resolved_config(train_map), request).labels.name(1) == "model_name");
  request.model_labels = mrcnn::data::LabelMap();  // a model without names still wins over data.train
  CHECK(mrcnn::infer::inference_job(resolved_config(train_map), request).labels.empty());

  request.label_map = files.label_map("flag_name");
  CHECK(mrcnn::infer::inference_job(resolved_config(train_map), request).labels.name(1) == "flag_name");
}

TEST_CASE("inference request: checked before any work", "[infer][request]") {
  const Files files;
  InferenceRequest request = request_for(files);
  request.inputs.clear();
  CHECK_THROWS_WITH(mrcnn::infer::check_request(request), "give the images with --input, --coco or --dataset");
  request.dataset = "val";
  CHECK_NOTHROW(mrcnn::infer::check_request(request));
  CHECK_THROWS_WITH(mrcnn::infer::inference_job(resolved_config(), request),
                    "--dataset val: data.val.annotations is empty in the configuration");
  request.output = (files.dir / "missing" / "out.json").string();
  CHECK_THROWS_AS(mrcnn::infer::check_request(request), mrcnn::Error);
}

TEST_CASE("inference_dataset: bad records skipped whatever data.on_invalid says", "[infer][request]") {
  const auto spec = mrcnn::infer::inference_dataset(resolved_config(), "val", 1234);
  CHECK(spec.format == "mask_png");
  CHECK(spec.on_invalid == mrcnn::data::InvalidPolicy::Skip);
  CHECK(spec.max_image_pixels == 1234);
  CHECK(spec.num_classes == 91);
}
