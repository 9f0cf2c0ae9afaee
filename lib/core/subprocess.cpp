#include "core/subprocess.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "core/error.h"

extern char** environ;

namespace mrcnn {

namespace {

// The child being waited for, for end_running_child (0: none). Read by a signal handler: a
// lock-free atomic (a plain int would not be guaranteed to be seen whole or in order).
std::atomic<pid_t> running_child{0};
static_assert(std::atomic<pid_t>::is_always_lock_free, "the signal handler reads running_child");

// How long a signalled child may take to end before it is killed: a child that ignores or handles
// the signal must not keep the parent (and its temporary files) alive.
constexpr int kChildGraceMs = 3000, kPollMs = 10;

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

// Starts argv with the parent's signal mask as it was before `blocked`; 0 or an errno value.
int spawn(pid_t& pid, std::vector<char*>& args, std::vector<char*>& env, const sigset_t& child_mask) {
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  ::posix_spawnattr_setsigmask(&attr, &child_mask);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int rc = ::posix_spawn(&pid, args[0], nullptr, &attr, args.data(), env.data());
  ::posix_spawnattr_destroy(&attr);
  return rc;
}

// Waits until pid has ended, without reaping it: while it is a zombie its pid cannot be reused,
// so a handler that signals running_child meanwhile cannot hit another process.
int wait_until_ended(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0)
    if (errno != EINTR) return errno;
  return 0;
}

}  // namespace

std::string sibling_executable(const std::string& name) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path candidate = ec ? std::filesystem::path(name) : self.parent_path() / name;
  if (!std::filesystem::exists(candidate, ec)) throw Error(candidate.string() + ": not found (it is installed with this tool)");
  return candidate.string();
}

EndingSignalsBlocked::EndingSignalsBlocked() {
  sigset_t ending;
  sigemptyset(&ending);
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&ending, signal);
  ::pthread_sigmask(SIG_BLOCK, &ending, &previous_);
}

EndingSignalsBlocked::~EndingSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

int run_program(const std::vector<std::string>& argv) {
  std::vector<std::string> arg_strings = argv, env_strings = child_environment();
  std::vector<char*> args = pointers(arg_strings), env = pointers(env_strings);
  pid_t pid = 0;
  {
    // A signal between the spawn and recording the pid would leave the child running unknown to
    // the handler: the ending signals wait until both are done (the child starts unblocked).
    EndingSignalsBlocked blocked;
    const int rc = spawn(pid, args, env, blocked.previous());
    if (rc != 0) throw Error(argv[0] + ": cannot start: " + std::strerror(rc));
    running_child.store(pid);
  }
  int lost = wait_until_ended(pid);
  int status = 0;
  {
    EndingSignalsBlocked blocked;  // forget the pid before reaping it: it may be reused after
    running_child.store(0);
    // ECHILD: the signal handler reaped it (from another thread), so its status is gone; never
    // take that for a success.
    while (lost == 0 && ::waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) lost = errno;
  }
  if (lost != 0) throw Error(argv[0] + ": lost track of the process: " + std::strerror(lost));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

namespace {

// The usual names of the signals that end a process (sigabbrev_np needs glibc 2.32).
std::string signal_name(int signal) {
  static const std::pair<int, const char*> kNames[] = {
      {SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},   {SIGABRT, "SIGABRT"},
      {SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"}, {SIGSEGV, "SIGSEGV"}, {SIGPIPE, "SIGPIPE"},
      {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}};
  for (const auto& [number, name] : kNames)
    if (number == signal) return name;
  return "unknown";
}

}  // namespace

void run_child_tool(const std::vector<std::string>& argv) {
  const int rc = run_program(argv);
  if (rc == 0) return;
  if (rc <= 128) throw ReportedFailure(rc);
  const int signal = rc - 128;  // the child printed nothing: this line is the user's one
  const std::string name = std::filesystem::path(argv[0]).filename().string();
  throw ChildKilled(name + " was killed by signal " + std::to_string(signal) + " (" + signal_name(signal) + ")",
                    signal);
}

void end_running_child(int signal) {
  std::atomic_signal_fence(std::memory_order_acquire);
  const pid_t pid = running_child.load();
  if (pid <= 0) return;
  ::kill(pid, signal);
  int status = 0;
  for (int waited = 0; waited < kChildGraceMs; waited += kPollMs) {
    const pid_t ended = ::waitpid(pid, &status, WNOHANG);
    if (ended == pid || (ended < 0 && errno != EINTR)) return;  // reaped, or not ours any more
    ::poll(nullptr, 0, kPollMs);                                 // async-signal-safe, unlike sleep_for
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace mrcnn
