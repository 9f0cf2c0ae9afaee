// `mrcnn-train --nproc N`: N local training processes of this same program, each given the
// environment torchrun would give it, so one machine trains data-parallel without a launcher.
#pragma once

#include <string>
#include <vector>

namespace mrcnn::train {

// Runs this executable nproc times with args (its own arguments, --nproc left out) and
// RANK = LOCAL_RANK = 0..nproc-1, WORLD_SIZE = nproc, MASTER_ADDR (default 127.0.0.1) and
// MASTER_PORT (default: a free port). SIGINT/SIGTERM are passed on to every process (they
// checkpoint and stop together). Returns 0 when all succeeded, else 2 when a process reported
// bad input, else the first failure's exit code (128 + signal for a killed one).
int run_local_processes(int nproc, const std::vector<std::string>& args);

// argv without the launcher's own flag ("--nproc N" or "--nproc=N").
std::vector<std::string> arguments_without_nproc(int argc, char** argv);

}  // namespace mrcnn::train
