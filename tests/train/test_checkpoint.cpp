// Checkpoints: rotation keeps the newest, latest.json decides what --resume reads (also after a
// kill in the middle of a write), the best model is kept and self-contained.
#include <torch/torch.h>
// c10's logging defines a CHECK macro (abort on failure); the test must use Catch's instead.
#undef CHECK
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "config/config.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "train/checkpoint.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using mrcnn::train::Checkpoint;
using mrcnn::train::CheckpointFolder;

namespace {

// A checkpoint whose weights say which step it is.
Checkpoint checkpoint_at(int64_t step) {
  Checkpoint c;
  c.step = step;
  c.weights = {{"w", torch::full({2, 3}, static_cast<float>(step))}};
  c.optimizer = {{"state.0.momentum_buffer", torch::full({2, 3}, 0.5f * step)}};
  return c;
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

const mrcnn::Json& resolved_config() {
  static const mrcnn::Json config = mrcnn::config::resolve(mrcnn::Json::object());
  return config;
}

}  // namespace

TEST_CASE("checkpoint names sort by step", "[train]") {
  CHECK(mrcnn::train::checkpoint_name(500) == "step_00000500");
  CHECK(mrcnn::train::checkpoint_name(0) < mrcnn::train::checkpoint_name(10));
}

TEST_CASE("rotation keeps the newest checkpoints and latest.json names the last", "[train]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("ckpt_rotation");
  const CheckpointFolder folder(dir, 3);
  CHECK_FALSE(folder.has_latest());
  for (int64_t step = 1; step <= 5; ++step) folder.write(checkpoint_at(step), resolved_config());
  CHECK(files_in(dir) == std::set<std::string>{"latest.json", "step_00000003.json", "step_00000003.safetensors",
                                               "step_00000003.optim.safetensors", "step_00000004.json",
                                               "step_00000004.safetensors", "step_00000004.optim.safetensors",
                                               "step_00000005.json", "step_00000005.safetensors",
                                               "step_00000005.optim.safetensors"});
  REQUIRE(folder.has_latest());
  CHECK(folder.latest().name == "step_00000005");
  CHECK(folder.latest().step == 5);
  const Checkpoint back = folder.read_latest();
  CHECK(back.step == 5);
  REQUIRE(back.weights.size() == 1);
  CHECK(torch::equal(back.weights[0].second, torch::full({2, 3}, 5.0f)));
  CHECK(torch::equal(back.optimizer[0].second, torch::full({2, 3}, 2.5f)));
  CHECK_FALSE(back.loss_scale);
  fs::remove_all(dir);
}

TEST_CASE("the loss scale travels with the checkpoint", "[train]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("ckpt_scale");
  Checkpoint c = checkpoint_at(7);
  c.loss_scale = mrcnn::train::LossScaleState{1024.0, 33};
  CheckpointFolder(dir).write(c, resolved_config());
  const Checkpoint back = CheckpointFolder(dir).read_latest();
  REQUIRE(back.loss_scale);
  CHECK(back.loss_scale->scale == 1024.0);
  CHECK(back.loss_scale->clean_steps == 33);
  fs::remove_all(dir);
}

TEST_CASE("resume after a kill in the middle of a write", "[train]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("ckpt_partial");
  const CheckpointFolder folder(dir);
  folder.write(checkpoint_at(4), resolved_config());

  SECTION("a checkpoint written but latest.json not yet switched: the previous one is resumed") {
    mrcnn::write_safetensors((dir / "step_00000005.safetensors").string(), checkpoint_at(5).weights);
    CHECK(folder.read_latest().step == 4);
    CHECK(torch::equal(folder.read_latest().weights[0].second, torch::full({2, 3}, 4.0f)));
  }
  SECTION("a temporary file of an interrupted atomic write is removed, the checkpoints stay") {
    std::ofstream(dir / ".step_00000005.safetensors.Ab12Cd") << "half a file";
    folder.prepare();
    CHECK(files_in(dir) == std::set<std::string>{"latest.json", "step_00000004.json", "step_00000004.safetensors",
                                                 "step_00000004.optim.safetensors"});
    CHECK(folder.read_latest().step == 4);
  }
  SECTION("latest.json naming a checkpoint that is not there is an error naming the file") {
    mrcnn::write_json_file((dir / "latest.json").string(), mrcnn::Json{{"checkpoint", "step_00000009"}, {"step", 9}});
    CHECK_THROWS_WITH(folder.read_latest(), Catch::Contains("step_00000009.safetensors"));
  }
  SECTION("a truncated weights file is an error naming it") {
    const fs::path weights = dir / "step_00000004.safetensors";
    fs::resize_file(weights, fs::file_size(weights) / 2);
    CHECK_THROWS_WITH(folder.read_latest(), Catch::Contains("step_00000004.safetensors"));
  }
  SECTION("latest.json may not lead out of the folder") {
    mrcnn::write_json_file((dir / "latest.json").string(), mrcnn::Json{{"checkpoint", "../step_00000004"}, {"step", 4}});
    CHECK_THROWS_WITH(folder.latest(), Catch::Contains("latest.json: \"checkpoint\" must be the name of a checkpoint"));
  }
  fs::remove_all(dir);
}

TEST_CASE("the best model keeps the highest AP, survives a resume and is self-contained", "[train]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("ckpt_best");
  mrcnn::data::LabelMap labels;
  labels.set(1, "square");
  int writes = 0;
  const auto weights_at = [&](int64_t step) {
    return [&writes, step] {
      ++writes;
      return checkpoint_at(step).weights;
    };
  };
  {
    mrcnn::train::BestModel best(dir, resolved_config(), labels);
    CHECK(best.offer(2, "segm AP", 0.30, weights_at(2)));
    CHECK_FALSE(best.offer(4, "segm AP", 0.20, weights_at(4)));
    CHECK_FALSE(best.offer(5, "segm AP", 0.30, weights_at(5)));  // not better: the earlier one stays
    CHECK(writes == 1);
  }
  mrcnn::train::BestModel resumed(dir, resolved_config(), labels);
  CHECK(resumed.value() == 0.30);
  CHECK(resumed.step() == 2);
  CHECK_FALSE(resumed.offer(6, "segm AP", 0.25, weights_at(6)));
  CHECK(resumed.offer(8, "segm AP", 0.45, weights_at(8)));

  const mrcnn::config::ModelFile model = mrcnn::config::read_model_file(resumed.file().string());
  CHECK(model.weights == resumed.file().string());
  CHECK(model.labels.name(1) == "square");
  CHECK(model.config["train"]["batch_size"] == resolved_config()["train"]["batch_size"]);
  CHECK(torch::equal(mrcnn::read_safetensors(model.weights)[0].second, torch::full({2, 3}, 8.0f)));
  CHECK(mrcnn::read_json_file((dir / "best.json").string())["step"] == 8);
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint's weights are not a self-contained model", "[train]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("ckpt_model_file");
  CheckpointFolder(dir).write(checkpoint_at(1), resolved_config());
  CHECK_THROWS_WITH(mrcnn::config::read_model_file((dir / "step_00000001.safetensors").string()),
                    Catch::Contains("not a self-contained mrcnn model"));
  fs::remove_all(dir);
}
