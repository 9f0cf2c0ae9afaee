#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mrcnn {
namespace fs = std::filesystem;

namespace {

Error write_error(const std::string& path, const std::string& reason) {
  return Error(path + ": cannot write: " + reason);
}

Error read_error(const std::string& path, const std::string& reason) {
  return Error(path + ": cannot read: " + reason);
}

std::string errno_reason(int error) { return error == ENOENT ? "no such file" : std::strerror(error); }

// Why an existing path is not a file to read from.
std::string not_regular_reason(mode_t mode) {
  if (S_ISDIR(mode)) return "it is a directory";
  if (S_ISFIFO(mode)) return "it is a named pipe (FIFO), not a regular file";
  if (S_ISSOCK(mode)) return "it is a socket, not a regular file";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "it is a device, not a regular file";
  return "it is not a regular file";
}

// Closes its file descriptor (when valid) on every way out of a scope.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// The folder a file at path goes into.
fs::path folder_of(const std::string& path) {
  const fs::path target(path);
  return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

// Why files cannot go into dir, as far as its existence tells; empty when it is a folder.
std::string folder_problem(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return "";
  if (fs::exists(dir, ec)) return "'" + dir.string() + "' is not a directory";
  return "directory '" + dir.string() + "' does not exist";
}

// Creates and removes a file in folder; the only test that is right for root, read-only mounts
// and virtual file systems alike (access(2) is not). Returns the errno of a failure, else 0.
int probe_write(const fs::path& folder) {
  std::string probe = (folder / ".mrcnn-write-probe.XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return errno;
  ::close(fd);
  ::unlink(probe.c_str());
  return 0;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, std::vector<std::string_view>{content});
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& pieces) {
  const fs::path target(path);
  if (path.empty()) throw Error("output path is empty");
  std::error_code ec;
  if (fs::is_directory(target, ec)) throw write_error(path, "it is a directory");
  const fs::path dir = folder_of(path);
  if (const std::string problem = folder_problem(dir); !problem.empty()) throw write_error(path, problem);

  std::string tmp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw write_error(path, std::strerror(errno));
  for (const std::string_view piece : pieces) {
    const char* data = piece.data();
    size_t left = piece.size();
    while (left > 0) {
      const ssize_t n = ::write(fd, data, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        const std::string reason = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        throw write_error(path, reason);
      }
      data += n;
      left -= static_cast<size_t>(n);
    }
  }
  // mkstemp makes 0600 files; give the result the usual permissions (0666 minus the umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw write_error(path, reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw write_error(path, reason);
  }
}

std::string read_text_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO would wait for a writer; fstat then says what was opened.
  const FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  if (file.fd < 0) throw read_error(path, errno_reason(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) throw read_error(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw read_error(path, not_regular_reason(st.st_mode));
  std::string content;
  try {
    content.resize(static_cast<size_t>(st.st_size));
  } catch (const std::exception&) {
    throw read_error(path, "the file (" + std::to_string(st.st_size) + " bytes) does not fit in memory");
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::read(file.fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw read_error(path, std::strerror(errno));
    if (n == 0) throw read_error(path, "the file shrank while being read");
    done += static_cast<size_t>(n);
  }
  return content;
}

void require_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw read_error(path, errno_reason(errno));
  if (!S_ISREG(st.st_mode)) throw read_error(path, not_regular_reason(st.st_mode));
}

void check_output_file(const std::string& path) {
  if (path.empty()) throw Error("output path is empty");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw write_error(path, "it is a directory");
  const fs::path dir = folder_of(path);
  if (const std::string problem = folder_problem(dir); !problem.empty()) throw write_error(path, problem);
  if (const int error = probe_write(dir))
    throw write_error(path, "cannot create files in '" + dir.string() + "': " + std::strerror(error));
}

void prepare_output_folder(const std::string& folder) {
  if (folder.empty()) throw Error("output folder path is empty");
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec || !fs::is_directory(folder, ec)) {
    const std::string reason = ec ? ec.message() : "a file of that name exists";
    throw Error(folder + ": cannot create the output folder: " + reason);
  }
  if (const int error = probe_write(folder))
    throw Error(folder + ": cannot write into the output folder: " + std::strerror(error));
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;  // both exist: the same inode
  // Absolute first: weakly_canonical leaves a relative path whose first part does not exist relative.
  const fs::path x = fs::weakly_canonical(fs::absolute(a, ec), ec);
  if (ec) return false;
  const fs::path y = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return !ec && x == y;
}

}  // namespace mrcnn
