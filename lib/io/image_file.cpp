#include "io/image_file.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace mrcnn {
namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".tif" || ext == ".tiff" ||
         ext == ".webp";
}

cv::Mat read_image_rgb(const std::string& path) {
  // Read the bytes ourselves so that a missing file and a corrupt one get different messages.
  const std::string bytes = read_text_file(path);
  if (bytes.empty()) throw Error(path + ": cannot decode image: the file is empty");
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception&) {
  }
  if (decoded.empty()) throw Error(path + ": cannot decode image: not a valid JPEG/PNG/BMP/TIFF/WebP file");
  cv::Mat rgb;
  cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (input.find_first_of("*?[") != std::string::npos && !fs::exists(input, ec)) {
      glob_t matches{};
      const int rc = ::glob(input.c_str(), 0, nullptr, &matches);
      size_t found = 0;
      if (rc == 0) {
        for (size_t i = 0; i < matches.gl_pathc; ++i) {
          if (fs::is_regular_file(matches.gl_pathv[i], ec)) {
            paths.emplace_back(matches.gl_pathv[i]);
            ++found;
          }
        }
      }
      globfree(&matches);
      if (found == 0) throw Error(input + ": the pattern matches no files");
    } else if (fs::is_directory(input, ec)) {
      size_t found = 0;
      for (const auto& entry : fs::directory_iterator(input, ec)) {
        if (entry.is_regular_file(ec) && has_image_extension(entry.path().string())) {
          paths.push_back(entry.path().string());
          ++found;
        }
      }
      if (found == 0) throw Error(input + ": folder holds no image files (.jpg, .png, .bmp, .tif, .webp)");
    } else if (fs::exists(input, ec)) {
      paths.push_back(input);
    } else {
      throw Error(input + ": no such file or folder");
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

void write_image_rgb(const std::string& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::string ext = fs::path(path).extension().string();
  if (ext.empty()) ext = ".png";
  std::vector<uchar> buffer;
  if (!cv::imencode(ext, bgr, buffer)) throw Error(path + ": cannot encode image as " + ext);
  write_file_atomic(path, std::string(buffer.begin(), buffer.end()));
}

}  // namespace mrcnn
