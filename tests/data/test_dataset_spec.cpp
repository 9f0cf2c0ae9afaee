// DatasetSpec::from_config: the one place a configuration's data.train / data.val becomes a
// reader's spec, with the data-wide policy, pixel limit and class count.
#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"
#include "core/error.h"
#include "data/datasets.h"

using mrcnn::Json;
using mrcnn::data::DatasetSpec;
using mrcnn::data::InvalidPolicy;

namespace {

Json resolved_config() {
  return mrcnn::config::resolve(Json::parse(R"({
    "model": {"num_classes": 7},
    "data": {
      "train": {"format": "mask_png", "images": "train/img", "annotations": "train/masks"},
      "val": {"format": "tfrecord", "annotations": "val.record@4"},
      "on_invalid": "fail",
      "max_image_pixels": 123456
    }
  })"));
}

}  // namespace

TEST_CASE("DatasetSpec::from_config reads the named set with the data-wide settings", "[data][dataset_spec]") {
  const Json config = resolved_config();
  const DatasetSpec train = DatasetSpec::from_config(config, "data.train");
  CHECK(train.format == "mask_png");
  CHECK(train.images == "train/img");
  CHECK(train.annotations == "train/masks");
  CHECK(train.on_invalid == InvalidPolicy::Fail);
  CHECK(train.num_classes == 7);
  CHECK(train.max_image_pixels == 123456);

  const DatasetSpec val = DatasetSpec::from_config(config, "data.val");
  CHECK(val.format == "tfrecord");
  CHECK(val.images.empty());
  CHECK(val.annotations == "val.record@4");
  CHECK(val.on_invalid == InvalidPolicy::Fail);
  CHECK(val.num_classes == 7);
  CHECK(val.max_image_pixels == 123456);
}

TEST_CASE("DatasetSpec::from_config: the defaults of a resolved configuration", "[data][dataset_spec]") {
  const DatasetSpec spec = DatasetSpec::from_config(mrcnn::config::resolve(Json::object()), "data.val");
  CHECK(spec.format == "coco");
  CHECK(spec.annotations.empty());
  CHECK(spec.on_invalid == InvalidPolicy::Skip);
  CHECK(spec.num_classes == 91);
  CHECK(spec.max_image_pixels == mrcnn::kDefaultMaxImagePixels);
}

TEST_CASE("DatasetSpec::from_config: a key that names no data set", "[data][dataset_spec]") {
  const Json config = resolved_config();
  for (const std::string key : {"data.test", "data.workers", "model"}) {
    INFO(key);
    CHECK_THROWS_AS(DatasetSpec::from_config(config, key), mrcnn::Error);
  }
  CHECK_THROWS_WITH(DatasetSpec::from_config(config, "data.test"), "data.test: no such data set in the configuration");
}
