#include "core/subprocess.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

extern char** environ;

namespace mrcnn {

namespace {

// The child being waited for, for end_running_child (0: none).
volatile sig_atomic_t running_child = 0;

// This process's environment with kParentToolVariable naming this executable.
std::vector<std::string> child_environment() {
  const std::string prefix = std::string(kParentToolVariable) + "=";
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry)
    if (std::strncmp(*entry, prefix.c_str(), prefix.size()) != 0) env.emplace_back(*entry);
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) env.push_back(prefix + self.filename().string());
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string sibling_executable(const std::string& name) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path candidate = ec ? std::filesystem::path(name) : self.parent_path() / name;
  if (!std::filesystem::exists(candidate, ec)) throw Error(candidate.string() + ": not found (it is installed with this tool)");
  return candidate.string();
}

int run_program(const std::vector<std::string>& argv) {
  std::vector<std::string> arg_strings = argv, env_strings = child_environment();
  std::vector<char*> args = pointers(arg_strings), env = pointers(env_strings);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), env.data());
  if (rc != 0) throw Error(argv[0] + ": cannot start: " + std::strerror(rc));
  running_child = pid;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno == EINTR) continue;
    running_child = 0;
    throw Error(argv[0] + ": lost track of the process: " + std::strerror(errno));
  }
  running_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void run_child_tool(const std::vector<std::string>& argv) {
  const int rc = run_program(argv);
  if (rc == 0) return;
  if (rc <= 128) throw ReportedFailure(rc);
  const std::string name = std::filesystem::path(argv[0]).filename().string();
  throw std::runtime_error(name + " was ended by signal " + std::to_string(rc - 128) + " (" +
                           strsignal(rc - 128) + ")");
}

void end_running_child(int signal) {
  const pid_t pid = running_child;
  if (pid <= 0) return;
  ::kill(pid, signal);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace mrcnn
