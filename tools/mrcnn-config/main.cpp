// mrcnn-config: create, inspect, edit, validate and compare experiment configurations.
#include <filesystem>
#include <functional>
#include <iostream>

#include "anchors/anchor_report.h"
#include "config/coco_export_command.h"
#include "config/config.h"
#include "config/presets.h"
#include "config/import_tf_command.h"
#include "config/tf_variables_command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "io/atomic_file.h"

namespace cfg = mrcnn::config;

namespace {

const char* kExamples = R"(  mrcnn-config list-presets
  mrcnn-config init --preset pennfudan_finetune -o run.json
  mrcnn-config set run.json train.steps=2000 train.epochs=0 train.batch_size=4 train.optimizer.lr=0.01
  mrcnn-config set run.json 'model.min_size=[480,512,544]' -o run_multiscale.json
  mrcnn-config get run.json model.rpn.nms_thresh
  mrcnn-config validate run.json
  mrcnn-config show run.json
  mrcnn-config diff configs/shapes_tiny_cpu.json run.json
  mrcnn-config keys --markdown
  mrcnn-config import-tf pipeline.config --label-map label_map.pbtxt -o run.json
  mrcnn-config import-tf pipeline.config -o my.json --checkpoint ckpt/ --save-model my.safetensors
  mrcnn-config anchors run.json --json anchors.json   (then --apply, or the printed set line)
  mrcnn-config export-coco run.json --set val -o val_as_coco.json
)";

// The flags of every subcommand; each subcommand below reads the ones it declared.
struct Flags {
  std::string file, other, preset, key, output;
  std::vector<std::string> assignments;
  bool force = false, markdown = false, exit_code = false;
  mrcnn::anchors::AnchorCommand anchors;
  cfg::ExportCocoCommand export_coco;
};

void refuse_existing(const std::string& output, bool force) {
  if (!force && std::filesystem::exists(output))
    throw mrcnn::Error(output + ": already exists (use --force to overwrite)");
}

int init_from_preset(const Flags& f) {
  const cfg::Preset& chosen = cfg::find_preset(f.preset);
  refuse_existing(f.output, f.force);
  mrcnn::write_file_atomic(f.output, chosen.text);
  mrcnn::log::info("wrote preset {} to {}", chosen.name, f.output);
  return 0;
}

int set_keys(const Flags& f) {
  mrcnn::Json doc = cfg::load_config_file(f.file);
  cfg::apply_assignments(doc, f.assignments, f.file);
  const std::string target = f.output.empty() ? f.file : f.output;
  cfg::require_valid(doc, target);
  mrcnn::write_json_file(target, doc);
  mrcnn::log::info("set {} key(s), wrote {}", f.assignments.size(), target);
  return 0;
}

int validate_file(const Flags& f) {
  const mrcnn::Json doc = cfg::load_config_file(f.file);
  cfg::require_valid(doc, f.file);
  for (const auto& line : cfg::missing_paths(cfg::resolve(doc))) mrcnn::log::warn("{}: {}", f.file, line);
  std::cout << f.file << ": valid\n";
  return 0;
}

int diff_files(const Flags& f) {
  const auto differences = cfg::diff(cfg::load_resolved(f.file), cfg::load_resolved(f.other));
  for (const auto& d : differences)
    std::cout << d.key << ": " << cfg::format_value(d.a) << " -> " << cfg::format_value(d.b) << "\n";
  return f.exit_code && !differences.empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-config",
                   "Create, inspect, edit, validate and compare mrcnn experiment configurations (JSON files of "
                   "overrides; every key not given takes its default).",
                   kExamples);
  CLI::App& app = tool.app();
  app.require_subcommand(1, 1);
  Flags f;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  auto command = [&](const char* name, const char* help, std::function<int()> run) {
    commands.emplace_back(app.add_subcommand(name, help), std::move(run));
    return commands.back().first;
  };
  auto* init = command("init", "Write a preset to a new configuration file", [&] { return init_from_preset(f); });
  init->add_option("--preset", f.preset, "Preset name (see list-presets)")->required();
  init->add_option("-o,--output", f.output, "File to write")->required();
  init->add_flag("--force", f.force, "Overwrite the file if it exists");
  command("list-presets", "List the presets with their descriptions", [&] {
    for (const auto& p : cfg::presets()) std::cout << p.name << "\n    " << p.description << "\n";
    return 0;
  });
  command("show", "Print the fully resolved configuration (defaults filled in)", [&] {
    std::cout << cfg::load_resolved(f.file).dump(2) << "\n";
    return 0;
  })->add_option("file", f.file, "Configuration file")->required();
  auto* get = command("get", "Print the resolved value of a key or section", [&] {
    std::cout << cfg::format_value(cfg::get_value(cfg::load_resolved(f.file), f.key)) << "\n";
    return 0;
  });
  get->add_option("file", f.file, "Configuration file")->required();
  get->add_option("key", f.key, "Dotted key path, e.g. model.rpn.nms_thresh")->required();
  auto* set = command("set", "Set keys (typed and validated) and write the file atomically", [&] { return set_keys(f); });
  set->add_option("file", f.file, "Configuration file")->required();
  set->add_option("assignments", f.assignments, "key.path=value ... (lists and objects in JSON syntax)")->required();
  set->add_option("-o,--output", f.output, "Write here instead of rewriting FILE");
  command("validate", "Report every problem: unknown keys, types, ranges, consistency", [&] { return validate_file(f); })
      ->add_option("file", f.file, "Configuration file")->required();
  auto* diff = command("diff", "List the keys whose resolved values differ between two files", [&] { return diff_files(f); });
  diff->add_option("a", f.file, "First configuration file")->required();
  diff->add_option("b", f.other, "Second configuration file")->required();
  diff->add_flag("--exit-code", f.exit_code, "Exit 1 when the configurations differ (as git diff --exit-code)");
  commands.push_back(cfg::add_import_tf_command(app));
  command("keys", "List every key with its type, default and meaning", [&] {
    std::cout << cfg::key_reference(f.markdown);
    return 0;
  })->add_flag("--markdown", f.markdown, "As a Markdown table");
  commands.emplace_back(mrcnn::anchors::add_anchor_command(app, f.anchors),
                        [&] { return mrcnn::anchors::run_anchor_command(f.anchors, std::cout); });
  commands.emplace_back(cfg::add_export_coco_command(app, f.export_coco),
                        [&] { return cfg::run_export_coco_command(f.export_coco); });
  commands.push_back(cfg::add_tf_variables_command(app));
  return tool.run(argc, argv, [&]() -> int {
    for (const auto& [subcommand, run] : commands)
      if (*subcommand) return run();
    return 0;
  });
}
