#include "infer/batch_inference.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/atomic_file.h"
#include "io/image_bands.h"
#include "io/image_file.h"

namespace mrcnn::infer {
namespace fs = std::filesystem;

namespace {

// The image's pixels; throws Error naming it when it cannot be read or decoded, is larger than
// the job's pixel limit, or is too thin for the model to resize.
cv::Mat load_image(const InferenceImage& image, const InferenceJob& job, const Detector& detector) {
  cv::Mat pixels;
  if (image.record_file.empty() && image.embedded_image_json.empty()) {
    pixels = read_image_bands(image.path, detector.band_layout(), job.max_image_pixels);
  } else {  // in a TFRecord, or inside a LabelMe JSON
    data::Sample sample;
    sample.record_file = image.record_file;
    sample.record_offset = image.record_offset;
    sample.embedded_image_json = image.embedded_image_json;
    data::load_image_only(sample, job.max_image_pixels, detector.band_layout());
    pixels = std::move(sample.image);
  }
  try {
    detector.check_image_size(pixels.rows, pixels.cols);
  } catch (const Error& e) {
    throw Error((image.path.empty() ? image.record_file : image.path) + ": " + e.what());
  }
  return pixels;
}

// One batch's images, read and decoded; the ones that failed listed as "path: why" when skipped.
struct DecodedBatch {
  std::vector<const InferenceImage*> images;
  std::vector<cv::Mat> pixels;
  std::vector<std::string> skipped;
};

// Images decoded and run together: a batch of infer.batch_size images, or with tiling one image
// (its tiles make the batches), so that memory holds one large image, not batch_size of them.
size_t images_per_batch(const InferenceJob& job) {
  return job.tiling.enabled() ? 1 : static_cast<size_t>(job.batch_size);
}

DecodedBatch decode_batch(const InferenceJob& job, const Detector& detector, size_t start) {
  DecodedBatch out;
  for (size_t i = start; i < std::min(job.images.size(), start + images_per_batch(job)); ++i) {
    std::string failure;
    try {
      out.pixels.push_back(load_image(job.images[i], job, detector));
      out.images.push_back(&job.images[i]);
      continue;
    } catch (const Error& e) {
      failure = e.what();
    } catch (const std::bad_alloc&) {
      failure = job.images[i].path + ": out of memory while reading the image";
    }
    if (!job.skip_unreadable) throw Error(failure);
    out.skipped.push_back(failure);
  }
  return out;
}

std::vector<eval::ImageDetections> detect_images(Detector& detector, const std::vector<cv::Mat>& pixels,
                                                 const InferenceJob& job) {
  if (!job.tiling.enabled()) return detector.detect(pixels, job.score_threshold);
  std::vector<eval::ImageDetections> detections;
  for (const cv::Mat& image : pixels)
    detections.push_back(detect_tiled(detector, image, job.tiling, job.score_threshold, job.batch_size));
  return detections;
}

}  // namespace

void check_job_fits_detector(const Detector& detector, const InferenceJob& job) {
  if (job.tiling.enabled() && !detector.takes_fixed_scale())
    throw Error("--tile / infer.tile.size: the TF OD API family (model.arch tf_faster_rcnn) does not run tiles");
}

InferenceSummary run_batch_inference(Detector& detector, const InferenceJob& job) {
  InferenceSummary summary;
  check_job_fits_detector(detector, job);
  if (!job.overlay_dir.empty()) prepare_output_folder(job.overlay_dir);
  viz::OutputNames overlay_names;
  if (job.tiling.enabled())
    log::info("tiled: {}-pixel tiles overlapping by {}, scale {}{}, {} tiles per forward pass", job.tiling.size,
              job.tiling.overlap, job.tiling.scale, job.tiling.full_image ? ", plus the whole image" : "",
              job.batch_size);
  Progress progress("inference", static_cast<int64_t>(job.images.size()), "img");
  // Batch k+1 is read and decoded on a helper thread while batch k runs on the model: on a GPU,
  // decoding a large PNG can take longer than the model.
  const size_t batch_size = images_per_batch(job);
  std::future<DecodedBatch> next;
  const auto decode = [&](size_t start) { return decode_batch(job, detector, start); };
  if (!job.images.empty()) next = std::async(std::launch::async, decode, size_t{0});
  for (size_t start = 0; start < job.images.size(); start += batch_size) {
    DecodedBatch decoded = next.get();  // rethrows the first unreadable image's Error (--on-error fail)
    if (start + batch_size < job.images.size())
      next = std::async(std::launch::async, decode, start + batch_size);
    for (const std::string& why : decoded.skipped) {
      log::warn("skipped: {}", why);
      ++summary.skipped;
      progress.advance();
    }
    const std::vector<const InferenceImage*>& batch = decoded.images;
    const std::vector<cv::Mat>& pixels = decoded.pixels;
    if (batch.empty()) continue;
    const auto started = std::chrono::steady_clock::now();
    const std::vector<eval::ImageDetections> detections = detect_images(detector, pixels, job);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (batch.size() == 1)
      log::debug("{}: image took {} s", batch[0]->path, seconds);
    else
      log::debug("batch of {} images took {} s", batch.size(), seconds);
    for (size_t k = 0; k < batch.size(); ++k) {
      for (auto& record : eval::to_coco_results(detections[k], batch[k]->id, batch[k]->file_name))
        summary.results.push_back(std::move(record));
      summary.detections += static_cast<int64_t>(detections[k].instances.size());
      if (!job.overlay_dir.empty()) {
        write_image_rgb((fs::path(job.overlay_dir) / overlay_names.claim(batch[k]->path, batch[k]->id)).string(),
                        viz::draw_instances(display_rgb(pixels[k], job.overlay_bands), detections[k].instances, job.labels, job.overlay_style));
      }
      ++summary.images;
      progress.advance();
    }
  }
  progress.finish();
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

}  // namespace mrcnn::infer
