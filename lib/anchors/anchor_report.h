// mrcnn-config anchors: how well a configuration's anchors fit its training set, the proposal,
// the before/after table, the JSON report (what mrcnn-visualize anchors draws) and the
// configuration with the proposal written in.
#pragma once

#include <CLI/CLI.hpp>

#include <ostream>
#include <string>

#include "anchors/anchor_search.h"
#include "io/json_file.h"

namespace mrcnn::anchors {

struct AnchorCommand {
  std::string config;         // the configuration file (its data.train is read)
  bool apply = false;         // write the proposal into the configuration...
  std::string output_config;  // ...or into this file (implies apply)
  std::string json;           // the full report, when set
  bool keep_count = false;    // propose only anchor sets with the current count per location
  size_t max_search_boxes = 20000;
};

// The survey and the proposal of one configuration.
struct AnchorReport {
  std::string config;
  BoxSet set;
  Thresholds thresholds;
  AnchorSet current;
  Proposal proposal;
  std::vector<float> current_ious, proposed_ious;  // per box of set.boxes
};

// Reads the configuration and its training set, measures the current anchors and searches.
AnchorReport make_anchor_report(const std::string& config_path, const SearchOptions& search);

// The before/after table, the boxes' aspect ratios and the `mrcnn-config set` line.
void print_anchor_report(const AnchorReport& report, std::ostream& out);

// The report as JSON (schema in docs/tools/mrcnn-config.md).
Json anchor_report_json(const AnchorReport& report);

// "mrcnn-config set CONFIG 'model.anchor.sizes=[...]' 'model.anchor.aspect_ratios=[...]'".
std::string set_command(const std::string& config, const AnchorSet& anchors);

// mrcnn-config's `anchors` subcommand with its arguments and flags, read into command.
CLI::App* add_anchor_command(CLI::App& app, AnchorCommand& command);

// Runs the command: the table on out, notes and warnings in the log, the files it asks for.
// Returns the exit code (0; errors are thrown).
int run_anchor_command(const AnchorCommand& command, std::ostream& out);

}  // namespace mrcnn::anchors
