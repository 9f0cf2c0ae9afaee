#include "core/temp_folder.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/subprocess.h"

namespace mrcnn {

namespace {

// The folders to remove when a signal ends the process, as fixed buffers: the handler may only
// read memory and make system calls (no allocation, no std::filesystem). A slot's path is written
// before its flag is set (release) and read after the flag (acquire), with signal fences: the
// compiler may not reorder them across the handler.
constexpr size_t kSlots = 8, kPathBytes = 4096;
std::array<std::array<char, kPathBytes>, kSlots> slot_paths;
std::array<std::atomic<int>, kSlots> slot_used{};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads slot_used");

// One pass over the folder's entries, unlinking each; returns how many it found (-1: unreadable).
long unlink_entries(int fd) {
  alignas(8) char buffer[4096];
  long found = 0;
  ::lseek(fd, 0, SEEK_SET);
  for (;;) {
    const long bytes = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer);
    if (bytes < 0) return -1;
    if (bytes == 0) return found;
    for (long offset = 0; offset < bytes;) {
      const auto* entry = reinterpret_cast<const struct dirent64*>(buffer + offset);
      const char* name = entry->d_name;
      if (std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) {
        ::unlinkat(fd, name, 0);
        ++found;
      }
      offset += entry->d_reclen;
    }
  }
}

// Removes the files in folder, then the folder, with system calls only (getdents64 instead of
// readdir, which allocates): the files a child was writing when it was ended go too. Unlinking
// while reading the directory may skip entries, and a file may still appear (an atomic write's
// rename), so it rescans until a pass finds nothing, a bounded number of times.
void remove_folder_from_handler(const char* folder) {
  const int fd = ::open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    for (int pass = 0; pass < 16 && unlink_entries(fd) > 0; ++pass) {
    }
    ::close(fd);
  }
  ::rmdir(folder);
}

// The child first (it writes into the folders), then the folders; then the signal's own action,
// so that the parent of this process sees it ended by the signal. errno is kept for the code the
// signal interrupted (the handler returns only when the signal's action does not end the process).
void on_signal(int signal) {
  const int saved_errno = errno;
  end_running_child(signal);
  for (size_t i = 0; i < kSlots; ++i) {
    if (slot_used[i].load(std::memory_order_acquire) == 0) continue;
    std::atomic_signal_fence(std::memory_order_acquire);
    remove_folder_from_handler(slot_paths[i].data());
  }
  ::signal(signal, SIG_DFL);
  ::raise(signal);
  errno = saved_errno;
}

// Installs the handler for the signals that end a tool, except those the caller ignores (nohup).
void install_handler() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(signal, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) continue;
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (const int other : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&action.sa_mask, other);
    ::sigaction(signal, &action, nullptr);
  }
}

}  // namespace

TemporaryFolder::TemporaryFolder(const std::string& prefix) {
  install_handler();
  // A signal between mkdtemp and registering the folder would leave it behind: held until both.
  EndingSignalsBlocked blocked;
  std::error_code ec;
  const std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) throw Error("no folder for temporary files: " + ec.message() + " (set TMPDIR to one)");
  std::string pattern = (base / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw Error(base.string() + ": cannot make a temporary folder: " + std::strerror(errno) +
                " (set TMPDIR to a writable folder)");
  path_ = pattern;
  for (size_t i = 0; i < kSlots && slot_ < 0; ++i) {
    if (slot_used[i].load() != 0 || path_.size() >= kPathBytes) continue;
    std::memcpy(slot_paths[i].data(), path_.c_str(), path_.size() + 1);
    std::atomic_signal_fence(std::memory_order_release);
    slot_used[i].store(1, std::memory_order_release);
    slot_ = static_cast<int>(i);
  }
}

TemporaryFolder::~TemporaryFolder() {
  // Removed before its slot is freed: a signal meanwhile removes it too, never leaves it.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (slot_ >= 0) slot_used[slot_].store(0, std::memory_order_release);
}

}  // namespace mrcnn
