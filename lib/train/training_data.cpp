#include "train/training_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "model/transform.h"
#include "train/validation.h"

namespace mrcnn::train {
namespace fs = std::filesystem;
namespace {

// Paths that must exist before anything starts (a TFRecord path may be a glob or shard pattern:
// its reader says when nothing matches).
void check_data_paths(const data::DatasetSpec& spec, const std::string& key) {
  std::error_code ec;
  if (spec.format == "tfrecord") {
    if (data::expand_record_paths(spec.annotations).empty())
      throw Error(key + ".annotations: no TFRecord file matches '" + spec.annotations + "'");
    return;
  }
  if (!fs::exists(spec.annotations, ec)) throw Error(key + ".annotations: '" + spec.annotations + "' does not exist");
  // LabelMe files name their images themselves (or embed them): the folder is optional there.
  if (!(spec.format == "labelme" && spec.images.empty()) && !fs::exists(spec.images, ec))
    throw Error(key + ".images: '" + spec.images + "' does not exist");
}

data::LabelMap read_label_map(const std::string& path, int64_t num_classes) {
  if (path.empty()) return {};
  data::LabelMap labels = data::LabelMap::read(path);
  for (const auto& [id, name] : labels.names())
    if (id < 1 || id >= num_classes)
      throw Error(path + ": class id " + std::to_string(id) + " (" + name + ") does not fit " +
                  "model.num_classes = " + std::to_string(num_classes) + " (ids 1.." + std::to_string(num_classes - 1) +
                  ")");
  return labels;
}

// A fixed split: the same images are held out in every run of this seed.
std::vector<data::Sample> hold_out(std::vector<data::Sample>& samples, double fraction, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::shuffle(samples.begin(), samples.end(), rng);
  const auto count = static_cast<size_t>(std::round(fraction * samples.size()));
  std::vector<data::Sample> held_out(std::make_move_iterator(samples.end() - count),
                                     std::make_move_iterator(samples.end()));
  samples.resize(samples.size() - count);
  log::info("{} images held out for validation (data.val_fraction {})", count, fraction);
  return held_out;
}

// The val set: data.val when it names annotations (a COCO file is evaluated as it is, crowd
// regions included), else the images data.val_fraction held out; none when neither is set.
std::unique_ptr<Validator> make_validator(const Json& config, std::vector<data::Sample> held_out,
                                          const data::DatasetSpec& train_spec, int64_t num_classes) {
  const data::DatasetSpec spec = data::DatasetSpec::from_config(config, "data.val");
  if (!spec.annotations.empty()) {
    check_data_paths(spec, "data.val");
    data::ReadReport report;
    std::vector<data::Sample> samples = data::read_dataset(spec, report);
    log::info("{}", report.summary(spec.annotations));
    eval::CocoGroundTruth gt =
        spec.format == "coco" ? eval::CocoGroundTruth::read(spec.annotations)
                              : eval::CocoGroundTruth::from_json(data::coco_document(samples, num_classes), spec.annotations);
    return std::make_unique<Validator>(std::move(samples), spec, std::move(gt));
  }
  if (held_out.empty()) return nullptr;
  eval::CocoGroundTruth gt =
      eval::CocoGroundTruth::from_json(data::coco_document(held_out, num_classes), "held-out training images");
  return std::make_unique<Validator>(std::move(held_out), train_spec, std::move(gt));
}

}  // namespace

TrainingData::TrainingData() = default;
TrainingData::~TrainingData() = default;
TrainingData::TrainingData(TrainingData&&) noexcept = default;
TrainingData& TrainingData::operator=(TrainingData&&) noexcept = default;

TrainingData read_training_data(const Json& config, const TrainSettings& settings, int64_t num_classes) {
  TrainingData out;
  out.spec = data::DatasetSpec::from_config(config, "data.train");
  check_data_paths(out.spec, "data.train");
  const data::LabelMap labels = read_label_map(settings.data.label_map, num_classes);
  data::ReadReport report;
  out.samples = data::read_dataset(out.spec, report);
  log::info("{}", report.summary(out.spec.annotations));
  std::vector<data::Sample> held_out;
  if (settings.data.val_fraction > 0 && !settings.data.val_set)
    held_out = hold_out(out.samples, settings.data.val_fraction, settings.seed);
  out.validator = make_validator(config, std::move(held_out), out.spec, num_classes);
  if (out.validator && !settings.data.label_map.empty()) out.validator->set_labels(labels);
  if (out.validator) out.validator->set_max_image_pixels(out.spec.max_image_pixels);
  if (!out.validator)
    log::info("no validation set (data.val.annotations and data.val_fraction are empty): no mAP during training");
  out.labels = labels.empty() && out.validator ? out.validator->labels() : labels;
  return out;
}

data::LoaderOptions loader_options(const TrainSettings& settings,
                                   std::function<void(int64_t, int64_t)> check_image_size, int64_t max_image_pixels,
                                   int shard, int shards) {
  data::LoaderOptions options;
  options.batch_size = settings.batch_size;
  options.workers = settings.data.workers;
  options.seed = settings.seed;
  options.aspect_ratio_grouping = settings.data.aspect_ratio_grouping;
  options.augmentations = settings.data.augmentations;
  options.shard = shard;
  options.shards = shards;
  options.max_image_pixels = max_image_pixels;
  options.check_image_size = std::move(check_image_size);
  return options;
}

}  // namespace mrcnn::train
