// A private folder for the files a tool writes for its child processes (mrcnn-eval --config's ground
// truth and detections), removed with all it holds on every way out: by its owner's destructor on
// a return or a throw, and by a handler on SIGINT, SIGTERM and SIGHUP.
#pragma once

#include <string>

namespace mrcnn {

class TemporaryFolder {
 public:
  // A new folder "<prefix>XXXXXX" (mode 0700) in $TMPDIR, else /tmp. Throws Error naming the
  // place when it cannot be made.
  explicit TemporaryFolder(const std::string& prefix);
  ~TemporaryFolder();
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;

  const std::string& path() const { return path_; }
  // path/name: a file written in the folder (the folder holds files only, no subfolders).
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  int slot_ = -1;  // its place among the folders the signal handler removes
};

}  // namespace mrcnn
