#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace mrcnn {
namespace fs = std::filesystem;

namespace {

Error write_error(const std::string& path, const std::string& reason) {
  return Error(path + ": cannot write: " + reason);
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
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) throw write_error(path, "directory '" + dir.string() + "' does not exist");

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
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path + ": cannot read: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + (fs::exists(path, ec) ? std::strerror(errno) : "no such file"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path + ": cannot read: I/O error");
  return buffer.str();
}

}  // namespace mrcnn
