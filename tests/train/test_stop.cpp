// The stop request: a signal or the time limit raises its flag; a new request starts clear.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include "train/stop.h"

TEST_CASE("SIGTERM and SIGINT raise the stop flag instead of ending the process", "[train]") {
  {
    const mrcnn::train::StopRequest stop(0);
    CHECK_FALSE(stop.now().signalled);
    std::raise(SIGTERM);
    CHECK(stop.now().signalled);
    CHECK_FALSE(stop.now().out_of_time);  // no time limit
  }
  const mrcnn::train::StopRequest next(0);
  CHECK_FALSE(next.now().signalled);  // a new run starts clear
  std::raise(SIGINT);
  CHECK(next.now().signalled);
  // The test program itself should end on these signals again.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

TEST_CASE("the time limit is reached once that much time has passed", "[train]") {
  CHECK_FALSE(mrcnn::train::StopRequest(3600).now().out_of_time);
  const mrcnn::train::StopRequest stop(0.001);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(stop.now().out_of_time);
  CHECK_FALSE(stop.now().signalled);
}
