// What mrcnn-train refuses for the TF OD API family (train/tfod_model.h), each by its key: the
// CUDA device above all, which the CLI tests cannot reach on a machine without a GPU.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "core/error.h"
#include "train/settings.h"
#include "train/tfod_model.h"

using Catch::Matchers::Contains;
using mrcnn::Json;
using mrcnn::train::check_tfod_training;
using mrcnn::train::TrainSettings;

namespace {

Json tf_config(const Json& train, const Json& resizer = Json::object()) {
  Json doc = {{"model", {{"arch", "tf_faster_rcnn"}, {"num_classes", 4}}}, {"train", train}};
  if (!resizer.empty()) doc["model"]["tf"] = {{"resizer", resizer}};
  return mrcnn::config::resolve(doc);
}

void check(const Json& config, int64_t processes = 1, bool cuda = false) {
  check_tfod_training(config, TrainSettings::from_config(config), processes, cuda);
}

}  // namespace

TEST_CASE("check_tfod_training: what the TF OD API family does not train with, by name", "[train][tfod]") {
  const Json plain = tf_config(Json::object());
  CHECK_NOTHROW(check(plain));
  CHECK_THROWS_WITH(check(plain, 1, true), Contains("--device cuda") && Contains("--device cpu"));
  CHECK_THROWS_WITH(check(plain, 2), Contains("data-parallel") && Contains("2 processes"));
  CHECK_THROWS_WITH(check(tf_config({{"amp", "bf16"}})), Contains("train.amp: bf16"));
  CHECK_THROWS_WITH(check(tf_config({{"dtype", "float64"}})), Contains("train.dtype: float64"));
  CHECK_THROWS_WITH(check(tf_config({{"channels_last", "on"}})), Contains("train.channels_last: on"));
  CHECK_NOTHROW(check(tf_config({{"channels_last", "off"}})));
  // Batches: fine when the resizer gives every image one size.
  const Json keep = {{"type", "keep_aspect_ratio"}, {"min_dimension", 64}, {"max_dimension", 96}};
  CHECK_THROWS_WITH(check(tf_config({{"batch_size", 2}}, keep)), Contains("train.batch_size: 2"));
  CHECK_NOTHROW(check(tf_config({{"batch_size", 1}}, keep)));
  Json padded = keep;
  padded["pad_to_max_dimension"] = true;
  CHECK_NOTHROW(check(tf_config({{"batch_size", 2}}, padded)));
  CHECK_NOTHROW(check(tf_config({{"batch_size", 2}})));  // fixed_shape
}
