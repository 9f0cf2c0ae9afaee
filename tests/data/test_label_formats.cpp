// The polygon label formats' pieces: YOLO names files in each data.yaml form, the circle/ellipse
// polygons, and class names to ids (a label map, or sorted names bounded by the model's classes).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/label_formats.h"
#include "data/polygon_sets.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace mrcnn::data;

namespace {

std::vector<std::string> names_of(const std::string& file, const std::string& text) {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("yolo_names");
  std::ofstream(dir / file) << text;
  return read_yolo_names((dir / file).string());
}

PolygonImage image_with(std::vector<std::string> names) {
  PolygonImage image;
  for (auto& name : names) image.instances.push_back({name, -1, {}, "x"});
  return image;
}

}  // namespace

TEST_CASE("YOLO names: data.yaml lists and maps, text files", "[data][label_formats]") {
  const std::vector<std::string> abc = {"a", "b", "c"};
  CHECK(names_of("data.yaml", "path: .\nnames: [a, 'b', \"c\"]\nnc: 3\n") == abc);
  CHECK(names_of("data.yaml", "names: [a,\n  b, c]\n") == abc);
  CHECK(names_of("data.yaml", "names:\n  - a\n  - b  # the second\n  - c\ntrain: x\n") == abc);
  CHECK(names_of("data.yml", "names:\n  2: c\n  0: a\n  1: b\n") == abc);
  CHECK(names_of("data.yaml", "names: {0: a, 1: b, 2: c}\n") == abc);
  CHECK(names_of("names.txt", "a\n\nb\r\nc\n") == abc);
}

TEST_CASE("YOLO names: each malformed file is one Error naming it", "[data][label_formats]") {
  CHECK_THROWS_WITH(names_of("data.yaml", "nc: 3\n"), Catch::Contains("no 'names:' key"));
  CHECK_THROWS_WITH(names_of("data.yaml", "names: [a, b\n"), Catch::Contains("data.yaml:1: names must be a list"));
  CHECK_THROWS_WITH(names_of("data.yaml", "names:\n  0: a\n  2: c\n"), Catch::Contains("indices must be 0, 1, 2"));
  CHECK_THROWS_WITH(names_of("data.yaml", "names:\n  0: a\n  0: b\n"), Catch::Contains("'0: b' is not a new"));
  CHECK_THROWS_WITH(names_of("data.yaml", "names:\n  - a\n  1: b\n"), Catch::Contains("mixes a list and a map"));
  CHECK_THROWS_WITH(names_of("names.txt", "\n\n"), Catch::Contains("no class names"));
}

TEST_CASE("circles and ellipses become polygons within 0.1 px of the curve", "[data][label_formats]") {
  CHECK(ellipse_vertex_count(0) == 16);
  CHECK(ellipse_vertex_count(1000) == static_cast<int>(std::ceil(M_PI * std::sqrt(5000.0))));
  for (const double r : {2.0, 10.0, 100.0, 5000.0}) {
    const int n = ellipse_vertex_count(r);
    CHECK(r * (1 - std::cos(M_PI / n)) <= 0.1);  // the sagitta of each edge
  }
  const std::vector<double> xy = ellipse_polygon(50, 40, 20, 10, M_PI / 2);  // rotated a quarter turn
  REQUIRE(xy.size() == 2u * ellipse_vertex_count(20));
  CHECK(xy[0] == Approx(50).margin(1e-12));
  CHECK(xy[1] == Approx(60));  // the x radius now points down
}

TEST_CASE("class names: a label map's ids, else sorted names bounded by the model", "[data][label_formats]") {
  const std::vector<PolygonImage> images = {image_with({"dog", "cat"}), image_with({"cat"})};
  DatasetSpec spec;
  spec.num_classes = 3;
  CHECK(class_ids(images, spec) == std::map<std::string, int64_t>{{"cat", 1}, {"dog", 2}});
  spec.num_classes = 2;
  CHECK_THROWS_WITH(class_ids(images, spec), Catch::Contains("2 class names (cat, dog) for model.num_classes 2"));
  const fs::path dir = mrcnn::testing::fresh_temp_dir("class_ids");
  std::ofstream(dir / "map.pbtxt") << "item { id: 5 name: 'dog' }\n";
  spec.label_map = (dir / "map.pbtxt").string();
  CHECK(class_ids(images, spec) == std::map<std::string, int64_t>{{"dog", 5}});
}
