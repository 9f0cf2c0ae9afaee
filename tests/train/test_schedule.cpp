// The learning-rate schedule at chosen steps against values worked out by hand, the settings read
// from a configuration, and the global batch check.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "core/error.h"
#include "train/settings.h"

using mrcnn::train::learning_rate;
using mrcnn::train::TrainSettings;

namespace {

TrainSettings schedule(const std::string& type, int64_t warmup_steps, double warmup_factor) {
  TrainSettings s;
  s.optimizer.lr = 0.1;
  s.schedule.type = type;
  s.schedule.warmup_steps = warmup_steps;
  s.schedule.warmup_factor = warmup_factor;
  s.schedule.gamma = 0.1;
  s.schedule.min_lr_factor = 0.0;
  return s;
}

}  // namespace

TEST_CASE("warm-up rises linearly from warmup_factor x lr to lr", "[train]") {
  const TrainSettings s = schedule("constant", 10, 0.001);
  CHECK(learning_rate(s, 0, 100, {}) == Approx(0.0001));   // 0.1 x 0.001
  CHECK(learning_rate(s, 5, 100, {}) == Approx(0.05005));  // 0.1 x (0.001 x 0.5 + 0.5)
  CHECK(learning_rate(s, 9, 100, {}) == Approx(0.09001));  // 0.1 x (0.001 x 0.1 + 0.9)
  CHECK(learning_rate(s, 10, 100, {}) == Approx(0.1));
  CHECK(learning_rate(s, 99, 100, {}) == Approx(0.1));
}

TEST_CASE("multistep multiplies by gamma at each milestone reached", "[train]") {
  const TrainSettings s = schedule("multistep", 10, 0.001);
  const std::vector<int64_t> milestones = {20, 30};
  CHECK(learning_rate(s, 5, 40, milestones) == Approx(0.05005));  // still warming up
  CHECK(learning_rate(s, 19, 40, milestones) == Approx(0.1));
  CHECK(learning_rate(s, 20, 40, milestones) == Approx(0.01));
  CHECK(learning_rate(s, 29, 40, milestones) == Approx(0.01));
  CHECK(learning_rate(s, 30, 40, milestones) == Approx(0.001));
  CHECK(learning_rate(s, 39, 40, milestones) == Approx(0.001));
}

TEST_CASE("cosine falls from lr to min_lr_factor x lr over the run", "[train]") {
  TrainSettings s = schedule("cosine", 0, 1.0);
  s.schedule.min_lr_factor = 0.1;
  CHECK(learning_rate(s, 0, 100, {}) == Approx(0.1));
  // 0.1 x (0.1 + 0.9 x 0.5 x (1 + cos(pi / 4))) = 0.1 x (0.1 + 0.45 x 1.70710678)
  CHECK(learning_rate(s, 25, 100, {}) == Approx(0.0868198051));
  CHECK(learning_rate(s, 50, 100, {}) == Approx(0.055));  // cos(pi / 2) = 0
  CHECK(learning_rate(s, 100, 100, {}) == Approx(0.01));
  CHECK(learning_rate(s, 150, 100, {}) == Approx(0.01));  // past the end: stays at the floor
}

TEST_CASE("cosine during the warm-up is the product of both factors", "[train]") {
  const TrainSettings s = schedule("cosine", 10, 0.5);
  // warm-up 0.5 x 0.5 + 0.5 = 0.75; cosine 0.5 x (1 + cos(0.05 pi)) = 0.5 x 1.98768834 = 0.99384417
  CHECK(learning_rate(s, 5, 100, {}) == Approx(0.1 * 0.75 * 0.99384417));
}

TEST_CASE("milestones and run length in epochs become steps", "[train]") {
  TrainSettings s;
  s.steps = 0;
  s.epochs = 26;
  s.schedule.milestones = {16, 22};
  CHECK(s.total_steps(10) == 260);
  CHECK(s.milestone_steps(10) == std::vector<int64_t>{160, 220});
  CHECK(s.checkpoint_every(10) == 10);  // 0: once an epoch
  s.steps = 500;
  s.eval_period = 50;
  CHECK(s.total_steps(10) == 500);
  CHECK(s.milestone_steps(10) == std::vector<int64_t>{16, 22});  // already steps
  CHECK(s.eval_every(10) == 50);
}

TEST_CASE("TrainSettings reads the resolved configuration once", "[train]") {
  mrcnn::Json doc = mrcnn::parse_json(R"({"train": {"batch_size": 8, "steps": 90, "optimizer": {"type": "adamw",
      "lr": 0.001, "betas": [0.8, 0.99]}, "lr_schedule": {"type": "cosine", "milestones": [3]}, "amp": "bf16"},
      "data": {"val_fraction": 0.25, "workers": 0}})", "test");
  const TrainSettings s = TrainSettings::from_config(mrcnn::config::resolve(doc));
  CHECK(s.batch_size == 8);
  CHECK(s.steps == 90);
  CHECK(s.optimizer.type == "adamw");
  CHECK(s.optimizer.lr == 0.001);
  CHECK(s.optimizer.beta1 == 0.8);
  CHECK(s.optimizer.beta2 == 0.99);
  CHECK(s.schedule.type == "cosine");
  CHECK(s.schedule.milestones == std::vector<int64_t>{3});
  CHECK(s.amp == "bf16");
  CHECK(s.data.val_fraction == 0.25);
  CHECK(s.data.workers == 1);  // at least one loader thread
  CHECK_FALSE(s.data.val_set);
  CHECK(s.log_period == 20);  // a default

  doc["train"]["dtype"] = "float64";
  CHECK_THROWS_WITH(TrainSettings::from_config(mrcnn::config::resolve(doc)),
                    Catch::Contains("train.dtype float64 and train.amp bf16 exclude each other"));
}

TEST_CASE("the global batch must give every process an image", "[train]") {
  CHECK_NOTHROW(mrcnn::train::check_global_batch(3, 3));
  CHECK_THROWS_WITH(mrcnn::train::check_global_batch(2, 3),
                    Catch::Contains("train.batch_size 2 is the global batch") && Catch::Contains("(3)"));
}
