// What the TFRecord fuzz targets share: a record file read as a tfrecord data set under both
// policies, and the pixels of every sample decoded.
#pragma once

#include <string>

#include "data/datasets.h"
#include "fuzzing.h"

namespace mrcnn::fuzz {

inline void read_tfrecord_set(const std::string& path) {
  for (const auto policy : {data::InvalidPolicy::Skip, data::InvalidPolicy::Fail})
    expect_clean_errors([&] {
      const data::DatasetSpec spec{"tfrecord", "", path, policy, /*num_classes=*/91};
      data::ReadReport report;
      for (data::Sample& sample : data::read_dataset(spec, report)) load_pixels(sample, spec);
      (void)report.summary(path);
    });
}

}  // namespace mrcnn::fuzz
