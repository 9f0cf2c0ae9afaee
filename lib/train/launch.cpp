#include "train/launch.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace mrcnn::train {
namespace {

std::atomic<int> pending_signal{0};
extern "C" void remember_signal(int signal) { pending_signal = signal; }

// A TCP port free right now (the kernel's pick), for the rendezvous of the local processes.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("--nproc: cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    throw Error(std::string("--nproc: cannot find a free port: ") + std::strerror(errno));
  }
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

std::vector<std::string> arguments_without_nproc(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (arg.rfind("--nproc=", 0) == 0) continue;
    out.push_back(arg);
  }
  return out;
}

int run_local_processes(int nproc, const std::vector<std::string>& args) {
  const char* addr = std::getenv("MASTER_ADDR");
  const char* port = std::getenv("MASTER_PORT");
  const std::string master_addr = addr && *addr ? addr : "127.0.0.1";
  const std::string master_port = port && *port ? port : std::to_string(free_port());
  log::info("--nproc {}: starting {} training processes (rendezvous {}:{})", nproc, nproc, master_addr, master_port);
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::map<pid_t, int> ranks;  // running processes
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) throw Error(std::string("--nproc: cannot start a process: ") + std::strerror(errno));
    if (pid == 0) {
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", master_addr.c_str(), 1);
      setenv("MASTER_PORT", master_port.c_str(), 1);
      std::vector<char*> argv;
      std::string self = "/proc/self/exe";
      argv.push_back(self.data());
      std::vector<std::string> copies = args;
      for (auto& a : copies) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(self.c_str(), argv.data());
      std::fprintf(stderr, "mrcnn-train: error: --nproc: cannot run %s: %s\n", self.c_str(), std::strerror(errno));
      _exit(127);
    }
    ranks[pid] = rank;
  }
  int result = 0;
  while (!ranks.empty()) {
    if (const int signal = pending_signal.exchange(0); signal != 0) {
      log::info("--nproc: passing signal {} on to the training processes", signal);
      for (const auto& [pid, rank] : ranks) kill(pid, signal);
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) break;
    const auto it = ranks.find(pid);
    if (it == ranks.end()) continue;
    const int rank = it->second;
    ranks.erase(it);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 0) continue;
    if (WIFSIGNALED(status))
      log::warn("--nproc: rank {} was killed by signal {}", rank, WTERMSIG(status));
    else
      log::warn("--nproc: rank {} exited with code {}", rank, code);
    if (result == 0 || (code == 2 && result != 2)) result = code;
  }
  return result;
}

}  // namespace mrcnn::train
