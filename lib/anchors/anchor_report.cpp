#include "anchors/anchor_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"

namespace mrcnn::anchors {
namespace {

const double kQuantiles[] = {0.05, 0.25, 0.5, 0.75, 0.95};

AnchorSet anchors_of(const Json& resolved) {
  if (resolved.at("model").value("arch", "torchvision") != "torchvision")
    throw Error("model.arch: " + resolved["model"]["arch"].get<std::string>() +
                ": mrcnn-config anchors fits the torchvision family's model.anchor; the TF OD API family's grid "
                "anchors are model.tf.anchors");
  const Json& anchor = resolved.at("model").at("anchor");
  return {anchor.at("sizes").get<std::vector<std::vector<int64_t>>>(),
          anchor.at("aspect_ratios").get<std::vector<double>>()};
}

std::string percent(int64_t part, int64_t whole) {
  if (whole == 0) return "-";
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * double(part) / double(whole));
  return text;
}

std::string format_row(const std::string& name, const std::string& boxes, const std::vector<std::string>& cells) {
  char text[256];
  std::snprintf(text, sizeof text, "%-26s %8s", name.c_str(), boxes.c_str());
  std::string row = text;
  for (size_t i = 0; i < cells.size(); ++i) {
    std::snprintf(text, sizeof text, i % 2 == 0 ? " | %8s" : " %8s", cells[i].c_str());
    row += text;
  }
  return row + "\n";
}

// Quantiles of the boxes' aspect ratios (height / width), nearest rank.
std::vector<double> ratio_quantiles(const std::vector<ResizedBox>& boxes) {
  std::vector<double> ratios;
  for (const auto& b : boxes) ratios.push_back(box_aspect_ratio(b.box));
  std::sort(ratios.begin(), ratios.end());
  std::vector<double> out;
  for (const double q : kQuantiles)
    out.push_back(ratios.empty() ? NAN : ratios[std::min(ratios.size() - 1, size_t(q * double(ratios.size())))]);
  return out;
}

void print_table(const AnchorReport& r, std::ostream& out) {
  const std::vector<Bucket> now = count_buckets(r.set.boxes, r.current_ious, r.thresholds);
  const std::vector<Bucket> then = count_buckets(r.set.boxes, r.proposed_ious, r.thresholds);
  char fg[64], bg[64];
  std::snprintf(fg, sizeof fg, "IoU >= %g (positive)", r.thresholds.fg);
  std::snprintf(bg, sizeof bg, "IoU < %g (no anchor)", r.thresholds.bg);
  char header[256];
  std::snprintf(header, sizeof header, "%-26s %8s | %-17s | %-17s | %-17s\n", "box size after resize", "boxes", fg,
                "IoU >= 0.5", bg);
  out << header << format_row("", "", {"current", "proposed", "current", "proposed", "current", "proposed"});
  for (size_t i = 0; i < now.size(); ++i) {
    const Bucket &a = now[i], &b = then[i];
    out << format_row(a.name, std::to_string(a.boxes),
                      {percent(a.positive, a.boxes), percent(b.positive, b.boxes), percent(a.iou50, a.boxes),
                       percent(b.iou50, b.boxes), std::to_string(a.below_bg), std::to_string(b.below_bg)});
  }
}

std::string list_text(const std::vector<double>& values) {
  std::string text;
  for (const double v : values) {
    char number[32];
    std::snprintf(number, sizeof number, "%.3g", v);
    text += (text.empty() ? "" : " ") + std::string(number);
  }
  return text;
}

Json buckets_json(const std::vector<Bucket>& buckets) {
  Json out = Json::array();
  for (const Bucket& b : buckets)
    out.push_back({{"name", b.name},
                   {"measure", b.by_area ? "area" : "sqrt_area"},
                   {"lo", b.lo},
                   {"hi", std::isinf(b.hi) ? Json(nullptr) : Json(b.hi)},
                   {"boxes", b.boxes},
                   {"positive", b.positive},
                   {"iou50", b.iou50},
                   {"below_bg", b.below_bg}});
  return out;
}

Json anchors_json(const AnchorSet& a, const std::vector<Bucket>& buckets) {
  return {{"sizes", a.sizes},
          {"aspect_ratios", a.aspect_ratios},
          {"anchors_per_location", a.per_location()},
          {"buckets", buckets_json(buckets)}};
}

// Box sizes (sqrt(area) after resize) in bins 4 per octave over the boxes' range, with the boxes
// each anchor set makes positive.
Json histogram_json(const AnchorReport& r) {
  double lo = INFINITY, hi = 0;
  for (const auto& b : r.set.boxes) lo = std::min(lo, box_side(b.box)), hi = std::max(hi, box_side(b.box));
  const int first = static_cast<int>(std::floor(4 * std::log2(std::max(lo, 0.25))));
  const int last = std::max(first + 1, static_cast<int>(std::floor(4 * std::log2(std::max(hi, 0.25)))) + 1);
  std::vector<double> edges;
  for (int e = first; e <= last; ++e) edges.push_back(std::exp2(e / 4.0));
  std::vector<int64_t> boxes(edges.size() - 1), now(boxes.size()), then(boxes.size());
  const auto fg = static_cast<float>(r.thresholds.fg);
  for (size_t i = 0; i < r.set.boxes.size(); ++i) {
    const int bin = static_cast<int>(std::floor(4 * std::log2(std::max(box_side(r.set.boxes[i].box), 0.25)))) - first;
    const size_t k = std::clamp<size_t>(std::max(bin, 0), 0, boxes.size() - 1);
    boxes[k] += 1, now[k] += r.current_ious[i] >= fg, then[k] += r.proposed_ious[i] >= fg;
  }
  return {{"measure", "sqrt_area"},
          {"edges", edges},
          {"boxes", boxes},
          {"positive_current", now},
          {"positive_proposed", then}};
}

// random_crop zooms: the crop, resized like a whole image, makes every box in it larger by up to
// 1/min_scale. The report measures uncropped images, so say how much larger training boxes get.
void warn_of_random_crop(const Json& resolved, const std::string& config_path) {
  const auto number = [](double v, const char* spec) {
    char text[32];
    std::snprintf(text, sizeof text, spec, v);
    return std::string(text);
  };
  for (const Json& aug : resolved["data"].value("augmentation", Json::array())) {
    if (aug.value("type", "") != "random_crop" || aug.value("prob", 0.5) <= 0) continue;
    const double min_scale = aug.value("min_scale", 0.5), max_scale = aug.value("max_scale", 1.0);
    log::warn("{}: data.augmentation has random_crop (crop sides {}-{} of the image, prob {}): in training those "
              "crops enlarge their boxes up to {}x beyond the sizes measured here",
              config_path, number(min_scale, "%g"), number(max_scale, "%g"), number(aug.value("prob", 0.5), "%g"),
              number(1.0 / min_scale, "%.2g"));
  }
}

}  // namespace

AnchorReport make_anchor_report(const std::string& config_path, const SearchOptions& search) {
  const Json doc = config::load_config_file(config_path);
  config::require_valid(doc, config_path);
  const Json resolved = config::resolve(doc);
  if (resolved.at("data").at("train").at("annotations").get<std::string>().empty())
    throw Error(config_path +
                ": data.train.annotations is not set (the anchor report measures the training set's boxes)");
  AnchorReport r;
  r.config = config_path;
  r.current = anchors_of(resolved);  // first: it refuses a family without these anchors
  r.set = read_training_boxes(resolved);
  r.thresholds = {resolved["model"]["rpn"]["fg_iou_thresh"].get<double>(),
                  resolved["model"]["rpn"]["bg_iou_thresh"].get<double>()};
  warn_of_random_crop(resolved, config_path);
  if (r.set.boxes.empty()) throw Error(r.set.source + ": the training set has no boxes to fit anchors to");
  r.current_ious = best_ious(r.set.boxes, r.current);
  SearchOptions options = search;
  options.thresholds = r.thresholds;
  if (r.set.boxes.size() > options.max_boxes)
    log::info("searching on {} evenly spaced boxes of {} (the tables count them all)", options.max_boxes,
              r.set.boxes.size());
  else
    log::info("searching anchor sizes and aspect ratios for {} boxes", r.set.boxes.size());
  r.proposal = propose_anchors(r.set.boxes, r.current, options);
  r.proposed_ious = best_ious(r.set.boxes, r.proposal.anchors);
  return r;
}

namespace {

// A path as a shell word: as it is when it holds only safe characters, else single-quoted.
std::string shell_word(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string("_./-+:,=@%").find(c) != std::string::npos;
  });
  if (safe) return text;
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::string set_command(const std::string& config, const AnchorSet& anchors) {
  return "mrcnn-config set " + shell_word(config) + " 'model.anchor.sizes=" + Json(anchors.sizes).dump() +
         "' 'model.anchor.aspect_ratios=" + Json(anchors.aspect_ratios).dump() + "'";
}

void print_anchor_report(const AnchorReport& r, std::ostream& out) {
  out << "training set: " << r.set.source << ": " << r.set.images << " images, " << r.set.annotated_boxes
      << " boxes; resized with model.min_size " << Json(r.set.min_sizes).dump() << " and model.max_size "
      << r.set.max_size << ": " << r.set.boxes.size() << " boxes measured\n";
  out << "current anchors:  sizes " << Json(r.current.sizes).dump() << ", aspect ratios "
      << Json(r.current.aspect_ratios).dump() << " (" << r.current.per_location() << " per location)\n";
  out << "proposed anchors: sizes " << Json(r.proposal.anchors.sizes).dump() << ", aspect ratios "
      << Json(r.proposal.anchors.aspect_ratios).dump() << " (" << r.proposal.anchors.per_location() << " per location)"
      << (r.proposal.changed ? "" : ": the current ones, nothing found covers more boxes") << "\n\n";
  print_table(r, out);
  out << "\nbox aspect ratios (height/width), quantiles 5/25/50/75/95%: " << list_text(ratio_quantiles(r.set.boxes))
      << "\n  anchors now: " << list_text(r.current.aspect_ratios)
      << "; proposed: " << list_text(r.proposal.anchors.aspect_ratios) << "\n";
  if (r.proposal.changed)
    out << "\nto apply it (or run again with --apply):\n  " << set_command(r.config, r.proposal.anchors) << "\n";
}

Json anchor_report_json(const AnchorReport& r) {
  Json current = anchors_json(r.current, count_buckets(r.set.boxes, r.current_ious, r.thresholds));
  Json proposed = anchors_json(r.proposal.anchors, count_buckets(r.set.boxes, r.proposed_ious, r.thresholds));
  proposed["changed"] = r.proposal.changed;
  Json quantiles = Json::array();
  const std::vector<double> values = ratio_quantiles(r.set.boxes);
  for (size_t i = 0; i < values.size(); ++i) quantiles.push_back({{"q", kQuantiles[i]}, {"value", values[i]}});
  return {{"config", r.config},
          {"train_set", {{"source", r.set.source}, {"images", r.set.images}, {"boxes", r.set.annotated_boxes}}},
          {"min_size", r.set.min_sizes},
          {"max_size", r.set.max_size},
          {"measured_boxes", r.set.boxes.size()},
          {"searched_boxes", r.proposal.searched_boxes},
          {"fg_iou_thresh", r.thresholds.fg},
          {"bg_iou_thresh", r.thresholds.bg},
          {"current", current},
          {"proposed", proposed},
          {"histogram", histogram_json(r)},
          {"aspect_ratio_quantiles", quantiles},
          {"set_command", r.proposal.changed ? Json(set_command(r.config, r.proposal.anchors)) : Json(nullptr)}};
}

namespace {

// The configuration file with the proposal written in, checked before it is written (atomically).
void apply_proposal(const AnchorCommand& command, const AnchorSet& anchors) {
  Json doc = config::load_config_file(command.config);
  config::set_value(doc, "model.anchor.sizes", anchors.sizes);
  config::set_value(doc, "model.anchor.aspect_ratios", anchors.aspect_ratios);
  const std::string target = command.output_config.empty() ? command.config : command.output_config;
  config::require_valid(doc, target);
  write_json_file(target, doc);
  log::info("wrote the anchors into {}", target);
}

// The proposal maximises positives over all boxes; a size bucket may lose some to others.
void warn_of_losses(const AnchorReport& r) {
  const std::vector<Bucket> now = count_buckets(r.set.boxes, r.current_ious, r.thresholds);
  const std::vector<Bucket> then = count_buckets(r.set.boxes, r.proposed_ious, r.thresholds);
  std::string lost;
  for (size_t i = 0; i < now.size(); ++i)
    if (then[i].positive < now[i].positive)
      lost += (lost.empty() ? "" : ", ") + now[i].name + " (" + std::to_string(now[i].positive) + " -> " +
              std::to_string(then[i].positive) + ")";
  if (!lost.empty()) log::warn("the proposal makes more boxes positive overall but fewer in: {} (see the table)", lost);
}

void warn_if_count_changes(const AnchorReport& r) {
  if (!r.proposal.changed || r.proposal.anchors.per_location() == r.current.per_location()) return;
  log::warn(
      "the proposal has {} anchors per location instead of {}: pretrained weights cannot fill the RPN's "
      "predictor layers (rpn.head.cls_logits, rpn.head.bbox_pred); fine-tuning (train.init_weights, "
      "--init-weights) re-initialises those and loads the rest",
      r.proposal.anchors.per_location(), r.current.per_location());
}

}  // namespace

CLI::App* add_anchor_command(CLI::App& app, AnchorCommand& c) {
  CLI::App& sub =
      *app.add_subcommand("anchors",
                          "Measure how the anchors fit the training set's boxes and propose better ones (sizes per FPN "
                          "level, aspect ratios)");
  sub.add_option("file", c.config, "Configuration file (its data.train is read)")->required();
  sub.add_flag("--apply", c.apply, "Write the proposed anchors into the configuration (atomically, validated)");
  sub.add_option("-o,--output", c.output_config, "Write the configuration with the proposal here (implies --apply)");
  sub.add_option("--json", c.json, "Write the full report as JSON (mrcnn-visualize anchors draws it)");
  sub.add_flag("--keep-count", c.keep_count,
               "Only propose anchor sets with the current number per location (keeps pretrained RPN predictors)");
  sub.add_option("--max-search-boxes", c.max_search_boxes,
                 "Search on an evenly spaced subsample of this many boxes when there are more (the search "
                 "keeps about 1.5 KB per box)")
      ->check(CLI::Range(size_t{100}, size_t{200000}))
      ->capture_default_str();
  return &sub;
}

int run_anchor_command(const AnchorCommand& command, std::ostream& out) {
  SearchOptions search;
  search.keep_count = command.keep_count;
  search.max_boxes = command.max_search_boxes;
  const AnchorReport report = make_anchor_report(command.config, search);
  print_anchor_report(report, out);
  warn_of_losses(report);
  warn_if_count_changes(report);
  if (!command.json.empty()) {
    write_json_file(command.json, anchor_report_json(report));
    log::info("wrote the report to {}", command.json);
  }
  if (!command.apply && command.output_config.empty()) return 0;
  if (report.proposal.changed || !command.output_config.empty())
    apply_proposal(command, report.proposal.anchors);
  else
    log::info("{} is left as it is: the current anchors are kept", command.config);
  return 0;
}

}  // namespace mrcnn::anchors
