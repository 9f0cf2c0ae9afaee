#include "config/coco_export_command.h"

#include <filesystem>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "data/coco_export.h"
#include "io/json_file.h"

namespace mrcnn::config {

CLI::App* add_export_coco_command(CLI::App& app, ExportCocoCommand& command) {
  CLI::App* sub = app.add_subcommand(
      "export-coco",
      "Write a configured data set (any data.*.format) as COCO JSON, masks as compressed RLE, to check it with "
      "other tools");
  sub->add_option("config", command.config, "Configuration file")->required();
  sub->add_option("--set", command.set, "Which set: train or val")
      ->check(CLI::IsMember({"train", "val"}))
      ->capture_default_str();
  sub->add_option("-o,--output", command.output, "COCO JSON file to write")->required();
  sub->add_flag("--force", command.force, "Overwrite the file if it exists");
  return sub;
}

int run_export_coco_command(const ExportCocoCommand& command) {
  if (!command.force && std::filesystem::exists(command.output))
    throw Error(command.output + ": already exists (use --force to overwrite)");
  const Json resolved = load_resolved(command.config);
  const std::string key = "data." + command.set;
  data::ReadReport report;
  const Json doc = data::export_coco_document(resolved, key, report);
  log::info("{}", report.summary(resolved.at("data").at(command.set).at("annotations").get<std::string>()));
  write_json_file(command.output, doc);
  log::info("wrote {}: {} images, {} annotations, {} categories", command.output, doc["images"].size(),
            doc["annotations"].size(), doc["categories"].size());
  return 0;
}

}  // namespace mrcnn::config
