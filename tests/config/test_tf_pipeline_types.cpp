// The pipeline.config import on fields of the wrong type and with a label map: each problem is an
// Error naming the file, the field path, what was expected and what was found.
#include <catch2/catch.hpp>

#include <fstream>

#include "config/tf_pipeline.h"
#include "core/error.h"
#include "io/text_proto.h"
#include "temp_dir.h"

using mrcnn::config::import_tf_pipeline;

namespace {

mrcnn::config::TfImport import_text(const std::string& text, const std::string& label_map = "") {
  return import_tf_pipeline(mrcnn::parse_text_proto(text, "p.config"), "p.config", label_map);
}

}  // namespace

TEST_CASE("tf import: fields of the wrong type are errors naming the field", "[config][tf_pipeline]") {
  const std::string m = "model { faster_rcnn { ";
  CHECK_THROWS_WITH(import_text(m + "num_classes: 'x' } }"),
                    "p.config: model.faster_rcnn.num_classes: expected an integer (32-bit), found \"x\"");
  CHECK_THROWS_WITH(import_text(m + "num_classes: 4294967296 } }"), Catch::Contains("found 4294967296"));
  CHECK_THROWS_WITH(import_text(m + "num_classes: -2147483649 } }"), Catch::Contains("found -2147483649"));
  CHECK_THROWS_WITH(import_text(m + "feature_extractor { type: [1, 2] } } }"),
                    "p.config: model.faster_rcnn.feature_extractor.type: expected a string, found [1,2]");
  CHECK_THROWS_WITH(import_text(m + "first_stage_nms_iou_threshold { } } }"),
                    Catch::Contains("expected a number, found an empty message {}"));
  CHECK_THROWS_WITH(import_text(m + "first_stage_anchor_generator { grid_anchor_generator { scales: [1,2,3,4,5] "
                                    "height: 1e300 } } } }"),
                    Catch::Contains("grid_anchor_generator.height: expected a positive number, found 1e+300"));
  CHECK_THROWS_WITH(import_text(m + "num_classes: 3 } }\ntrain_config { optimizer { momentum_optimizer { "
                                    "learning_rate { manual_step_learning_rate { warmup: 1 } } } } }"),
                    Catch::Contains("manual_step_learning_rate.warmup: expected true or false, found 1"));
  // A long field name is shortened in the message.
  const std::string name(100000, 'n');
  try {
    import_text(m + "num_classes: 3 second_stage_post_processing { " + name + " {} } } }\ntrain_config { batch_size "
                "{ x: 1 } }");
    FAIL("accepted");
  } catch (const mrcnn::Error& e) {
    CHECK(std::string(e.what()) == "p.config: train_config.batch_size: expected an integer (32-bit), found a message "
                                   "{ ... }");
  }
}

TEST_CASE("tf import: unknown fields are reported with short lines", "[config][tf_pipeline]") {
  const auto imported = import_text("model { faster_rcnn { num_classes: 3 " + std::string(100000, 'u') + ": '" +
                                    std::string(100000, 'v') + "' } }");
  REQUIRE(imported.warnings.size() == 1);
  CHECK(imported.warnings[0].size() < 450);
  CHECK(imported.warnings[0].find("(100018 characters)") != std::string::npos);
}

TEST_CASE("tf import: --label-map is read, checked and carried", "[config][tf_pipeline]") {
  const auto dir = mrcnn::testing::fresh_temp_dir("tf_label_map");
  const std::string labels = (dir / "labels.pbtxt").string();
  std::ofstream(labels) << "item { id: 1 name: 'a' } item { id: 7 name: 'g' }";
  const auto imported = import_text("model { faster_rcnn { } }", labels);
  CHECK(imported.config["model"]["num_classes"] == 8);
  CHECK(imported.config["data"]["train"]["label_map"] == labels);
  CHECK_THROWS_WITH(import_text("model { faster_rcnn { num_classes: 6 } }", labels),
                    labels + ": class id 7 (g) is larger than p.config's model.faster_rcnn.num_classes = 6 (TF counts "
                             "no background)");
  CHECK_THROWS_WITH(import_text("model { faster_rcnn { } }", (dir / "missing.pbtxt").string()),
                    Catch::Contains("missing.pbtxt"));
}
