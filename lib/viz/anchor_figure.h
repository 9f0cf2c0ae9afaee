// The picture of mrcnn-config anchors' JSON report: the training boxes' sizes after the resize as
// a histogram (log scale), the part of each bin the current and the proposed anchors make positive,
// the anchor sizes of every level as vertical lines, and the positive share of each size bucket.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace mrcnn::viz {

// What the figure needs of the report, checked while it is read.
struct AnchorFigureData {
  std::vector<double> edges;                                        // bin edges of sqrt(area), pixels, increasing
  std::vector<int64_t> boxes, positive_current, positive_proposed;  // per bin
  std::vector<double> current_sizes, proposed_sizes;                // every level's sizes
  struct Share {
    double lo = 0, hi = 0;  // sqrt(area) range; hi infinite for the last
    int64_t boxes = 0, positive_current = 0, positive_proposed = 0;
  };
  std::vector<Share> buckets;  // the sqrt(area) buckets
  double fg_iou_thresh = 0.7;
  bool changed = false;
};

// Reads the report; a malformed or hostile one throws Error naming the file and the field.
AnchorFigureData read_anchor_report(const std::string& path);

// The figure as an RGB image.
cv::Mat anchor_figure(const AnchorFigureData& data, cv::Size size = {960, 520});

// mrcnn-visualize anchors: the report's figure written to output (PNG).
void write_anchor_figure(const std::string& report_path, const std::string& output);

}  // namespace mrcnn::viz
