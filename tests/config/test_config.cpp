// Configuration: validation finds every kind of problem, resolve fills defaults, edits are typed.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "config/presets.h"
#include "core/error.h"

using mrcnn::Json;
namespace cfg = mrcnn::config;

namespace {

std::vector<std::string> problem_texts(const Json& doc) {
  std::vector<std::string> texts;
  for (const auto& p : cfg::validate(doc)) texts.push_back(p.str());
  return texts;
}

bool any_contains(const std::vector<std::string>& texts, const std::string& needle) {
  for (const auto& t : texts)
    if (t.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("an empty configuration is valid and resolves to torchvision's defaults", "[config]") {
  const Json doc = Json::object();
  REQUIRE(cfg::validate(doc).empty());
  const Json r = cfg::resolve(doc);
  CHECK(r["model"]["num_classes"] == 91);
  CHECK(r["model"]["min_size"] == Json::array({800}));
  CHECK(r["model"]["max_size"] == 1333);
  CHECK(r["model"]["rpn"]["nms_thresh"] == 0.7);
  CHECK(r["model"]["roi"]["detections_per_img"] == 100);
  CHECK(r["model"]["anchor"]["sizes"].size() == 5);
  CHECK(r["train"]["optimizer"]["type"] == "sgd");
}

TEST_CASE("every schema default is itself valid", "[config]") {
  for (const auto& spec : cfg::schema()) {
    Json doc = Json::object();
    cfg::set_value(doc, spec.path, spec.default_value);
    INFO(spec.path);
    CHECK(cfg::validate(doc).empty());
  }
}

TEST_CASE("resolve keeps overrides, fills the rest and turns a single min_size into a list", "[config]") {
  const Json doc = Json::parse(R"({"model": {"min_size": 640, "rpn": {"nms_thresh": 0.6}}})");
  REQUIRE(cfg::validate(doc).empty());
  const Json r = cfg::resolve(doc);
  CHECK(r["model"]["min_size"] == Json::array({640}));
  CHECK(r["model"]["rpn"]["nms_thresh"] == 0.6);
  CHECK(r["model"]["rpn"]["fg_iou_thresh"] == 0.7);
}

TEST_CASE("resolve fills augmentation parameters from their defaults", "[config]") {
  const Json doc = Json::parse(R"({"data": {"augmentation": [{"type": "random_crop", "prob": 0.3}]}})");
  REQUIRE(cfg::validate(doc).empty());
  const Json aug = cfg::resolve(doc)["data"]["augmentation"][0];
  CHECK(aug["prob"] == 0.3);
  CHECK(aug["min_scale"] == 0.5);
  CHECK(aug["max_scale"] == 1.0);
}

TEST_CASE("unknown keys are reported with a did-you-mean", "[config]") {
  const auto texts = problem_texts(Json::parse(R"({"model": {"num_clases": 3, "rpn": {"nms_tresh": 0.5}}})"));
  REQUIRE(texts.size() == 2);
  CHECK(any_contains(texts, "model.num_clases: unknown key (did you mean 'model.num_classes'?)"));
  CHECK(any_contains(texts, "model.rpn.nms_tresh: unknown key (did you mean 'model.rpn.nms_thresh'"));
}

TEST_CASE("a key in the wrong section points at the right ones", "[config]") {
  const auto hint = cfg::did_you_mean("model.nms_thresh");
  CHECK(hint.find("model.rpn.nms_thresh") != std::string::npos);
  CHECK(hint.find("model.roi.nms_thresh") != std::string::npos);
  CHECK(cfg::did_you_mean("completely.unrelated.thing").empty());
}

TEST_CASE("wrong types name the key, the expectation and the value", "[config]") {
  const auto texts = problem_texts(Json::parse(
      R"({"model": {"num_classes": "three", "max_size": 1333.5, "roi": {"aligned": 1}},
          "train": {"optimizer": {"type": "rmsprop"}}, "infer": {"device": "gpu"}})"));
  CHECK(texts.size() == 5);
  CHECK(any_contains(texts, "model.num_classes: expected an integer >= 2, found \"three\""));
  CHECK(any_contains(texts, "model.max_size: expected an integer >= 1, found 1333.5"));
  CHECK(any_contains(texts, "model.roi.aligned: expected true or false, found 1"));
  CHECK(any_contains(texts, "train.optimizer.type: expected one of sgd, adamw, found \"rmsprop\""));
  CHECK(any_contains(texts, "infer.device: expected a device"));
}

TEST_CASE("out-of-range values are reported with their bounds", "[config]") {
  const auto texts = problem_texts(Json::parse(
      R"({"model": {"num_classes": 1, "rpn": {"nms_thresh": 1.5}, "image_std": [0.2, 0.0, 0.2],
                    "image_mean": [0.5, 0.5]}})"));
  CHECK(texts.size() == 4);
  CHECK(any_contains(texts, "model.num_classes: expected an integer >= 2, found 1"));
  CHECK(any_contains(texts, "model.rpn.nms_thresh: expected a number >= 0 and <= 1, found 1.5"));
  CHECK(any_contains(texts, "model.image_std: expected a list of 3 numbers > 0"));
  CHECK(any_contains(texts, "model.image_mean: expected a list of 3 numbers"));
}

TEST_CASE("a section given as a scalar is reported", "[config]") {
  const auto texts = problem_texts(Json::parse(R"({"model": {"rpn": 3}})"));
  REQUIRE(texts.size() == 1);
  CHECK(texts[0] == "model.rpn: expected an object (a section of keys), found 3");
}

TEST_CASE("bad augmentation entries are reported per item", "[config]") {
  const auto texts = problem_texts(Json::parse(
      R"({"data": {"augmentation": [{"type": "mosaic"}, {"type": "horizontal_flip", "p": 0.5},
                                    {"type": "horizontal_flip", "prob": 2}, 7]}})"));
  CHECK(texts.size() == 4);
  CHECK(any_contains(texts, "data.augmentation[0].type: unknown augmentation 'mosaic'"));
  CHECK(any_contains(texts, "data.augmentation[1].p: unknown parameter of horizontal_flip"));
  CHECK(any_contains(texts, "data.augmentation[2].prob: expected a number >= 0 and <= 1, found 2"));
  CHECK(any_contains(texts, "data.augmentation[3]: expected an object"));
}

TEST_CASE("inconsistent values are reported together", "[config]") {
  const auto texts = problem_texts(Json::parse(R"({
      "model": {"anchor": {"sizes": [[32], [64], [128], [256]]}, "min_size": [800, 1400], "max_size": 1333,
                "rpn": {"fg_iou_thresh": 0.3, "bg_iou_thresh": 0.5}, "mask": {"resolution": 27}},
      "train": {"steps": 100, "epochs": 10}})"));
  CHECK(any_contains(texts, "model.anchor.sizes: has 4 levels, expected 5"));
  CHECK(any_contains(texts, "model.min_size: 1400 is larger than model.max_size (1333)"));
  CHECK(any_contains(texts, "model.rpn.bg_iou_thresh: 0.5 is above fg_iou_thresh (0.3)"));
  CHECK(any_contains(texts, "model.mask.resolution: expected an even number"));
  CHECK(any_contains(texts, "train: train.steps (100) and train.epochs (10) are both set"));
}

TEST_CASE("anchor levels must hold the same number of sizes", "[config]") {
  const auto texts = problem_texts(Json::parse(R"({"model": {"anchor": {"sizes": [[32, 40], [64], [128], [256], [512]]}}})"));
  REQUIRE(texts.size() == 1);
  CHECK(any_contains(texts, "found 2, 1, 1, 1, 1"));
}

TEST_CASE("TF OD API family settings the model cannot run are refused at load, each by its key", "[config][tfod]") {
  const auto problems_of = [](const Json& tf, long long channels = 3) {
    const Json per_band = std::vector<double>(static_cast<size_t>(channels), 0.5);
    return problem_texts(Json{{"model", {{"arch", "tf_faster_rcnn"}, {"input_channels", channels}, {"tf", tf},
                                         {"image_mean", per_band}, {"image_std", per_band}}}});
  };
  REQUIRE(problems_of(Json::object()).empty());
  CHECK(problems_of({{"number_of_stages", 1}}) ==
        std::vector<std::string>{"model.tf.number_of_stages: 1 (proposals only) gives no detections: expected 2 "
                                 "(boxes) or 3 (boxes and masks)"});
  CHECK(problems_of({{"resizer", {{"type", "keep_aspect_ratio"}, {"min_dimension", 1200}, {"max_dimension", 1000}}}}) ==
        std::vector<std::string>{"model.tf.resizer.min_dimension: 1200 is above model.tf.resizer.max_dimension 1000"});
  CHECK(problems_of({{"resizer", {{"type", "fixed_shape"}, {"min_dimension", 1200}, {"max_dimension", 1000}}}}).empty());
  CHECK(problems_of({{"anchors", {{"scales", Json::array()}}}}) ==  // the key's own check
        std::vector<std::string>{"model.tf.anchors.scales: expected a list of numbers > 0, found []"});
  CHECK(problems_of({{"maxpool_kernel_size", 18}}) ==
        std::vector<std::string>{"model.tf.maxpool_kernel_size: 18 is larger than model.tf.initial_crop_size 17"});
  CHECK(problems_of({{"maxpool_kernel_size", 2}, {"maxpool_stride", 0}}) ==
        std::vector<std::string>{"model.tf.maxpool_stride: 0 with model.tf.maxpool_kernel_size 2 (a max pool needs a "
                                 "stride of at least 1)"});
  CHECK(any_contains(problems_of(Json::object(), 4), "model.input_channels: 4: the TF OD API family"));
  // The torchvision family does not read model.tf.*.
  CHECK(problem_texts(Json{{"model", {{"tf", {{"number_of_stages", 1}}}}}}).empty());
}

TEST_CASE("milestones must increase and fall inside the run", "[config]") {
  CHECK(any_contains(problem_texts(Json::parse(R"({"train": {"lr_schedule": {"milestones": [10, 5]}}})")),
                     "expected increasing values"));
  CHECK(any_contains(problem_texts(Json::parse(R"({"train": {"epochs": 12}})")),
                     "22 is not before the end of the run (train.epochs = 12)"));
  CHECK(problem_texts(Json::parse(R"({"train": {"epochs": 12, "lr_schedule": {"type": "cosine"}}})")).empty());
}

TEST_CASE("parse_value is typed", "[config]") {
  CHECK(cfg::parse_value("model.num_classes", "3") == 3);
  CHECK_THROWS_WITH(cfg::parse_value("model.num_classes", "abc"),
                    "model.num_classes: expected an integer >= 2, got 'abc'");
  CHECK_THROWS_WITH(cfg::parse_value("model.num_classes", "1"), Catch::Contains("expected an integer >= 2, found 1"));
  CHECK_THROWS_WITH(cfg::parse_value("model.num_classes", "3.5"), Catch::Contains("got '3.5'"));
  CHECK(cfg::parse_value("train.optimizer.lr", "0.01") == 0.01);
  CHECK(cfg::parse_value("train.optimizer.lr", "1e-3") == 0.001);
  CHECK_THROWS(cfg::parse_value("train.optimizer.lr", "nan"));
  CHECK(cfg::parse_value("model.roi.aligned", "true") == true);
  CHECK_THROWS(cfg::parse_value("model.roi.aligned", "yes please"));
  CHECK(cfg::parse_value("model.min_size", "[480, 512]") == Json::array({480, 512}));
  CHECK(cfg::parse_value("model.min_size", "600") == 600);
  CHECK_THROWS_WITH(cfg::parse_value("model.min_size", "[480,"), Catch::Contains("in JSON syntax"));
  CHECK(cfg::parse_value("data.train.images", "some dir/with spaces") == "some dir/with spaces");
  CHECK(cfg::parse_value("train.optimizer.type", "adamw") == "adamw");
  CHECK_THROWS(cfg::parse_value("train.optimizer.type", "adam"));
  CHECK_THROWS_WITH(cfg::parse_value("model.num_clases", "3"), Catch::Contains("did you mean 'model.num_classes'"));
  CHECK(cfg::parse_value("model.rpn", R"({"nms_thresh": 0.6})")["nms_thresh"] == 0.6);
  CHECK_THROWS(cfg::parse_value("model.rpn", "0.6"));
}

TEST_CASE("get_value reads keys and sections, and refuses unknown paths", "[config]") {
  const Json r = cfg::resolve(Json::object());
  CHECK(cfg::get_value(r, "model.rpn.nms_thresh") == 0.7);
  CHECK(cfg::get_value(r, "model.rpn").is_object());
  CHECK_THROWS_WITH(cfg::get_value(r, "model.rpn.nms"), Catch::Contains("unknown key"));
}

TEST_CASE("diff lists exactly the differing keys", "[config]") {
  const Json a = cfg::resolve(Json::object());
  const Json b = cfg::resolve(Json::parse(R"({"model": {"num_classes": 2, "min_size": 800}, "train": {"seed": 7}})"));
  const auto d = cfg::diff(a, b);
  REQUIRE(d.size() == 2);
  CHECK(d[0].key == "model.num_classes");
  CHECK(d[0].a == 91);
  CHECK(d[0].b == 2);
  CHECK(d[1].key == "train.seed");
  CHECK(cfg::diff(a, a).empty());
}

TEST_CASE("every shipped preset is valid", "[config][presets]") {
  REQUIRE(cfg::presets().size() >= 3);
  for (const auto& preset : cfg::presets()) {
    INFO(preset.name);
    const Json doc = mrcnn::parse_json(preset.text, preset.name);
    CHECK(cfg::validate(doc).empty());
    CHECK_FALSE(preset.description.empty());
  }
  CHECK_THROWS_WITH(cfg::find_preset("nope"), Catch::Contains("maskrcnn_resnet50_fpn_coco"));
}

TEST_CASE("the COCO preset holds torchvision's COCO-weights values", "[config][presets]") {
  const Json r = cfg::resolve(mrcnn::parse_json(cfg::find_preset("maskrcnn_resnet50_fpn_coco").text, "coco"));
  CHECK(r["model"]["frozen_bn_eps"] == 0.0);
  CHECK(r["model"]["mask"]["dice_weight"] == 0.0);
  CHECK(r["model"]["mask"]["bce_weight"] == 1.0);
}
