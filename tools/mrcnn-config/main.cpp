// mrcnn-config: create, inspect, edit, validate and compare experiment configurations.
#include <filesystem>
#include <iostream>

#include "config/config.h"
#include "config/presets.h"
#include "config/tf_pipeline.h"
#include "core/error.h"
#include "core/log.h"
#include "core/tool.h"
#include "io/atomic_file.h"
#include "io/text_proto.h"

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
)";

// Every path-valued key that names something missing: worth a warning, not an error, because
// configurations are often written before the data is in place.
void warn_missing_paths(const mrcnn::Json& resolved, const std::string& source) {
  for (const auto& spec : cfg::schema()) {
    if (spec.type != cfg::ValueType::Path) continue;
    const std::string value = cfg::get_value(resolved, spec.path).get<std::string>();
    std::error_code ec;
    if (!value.empty() && !std::filesystem::exists(value, ec))
      mrcnn::log::warn("{}: {}: '{}' does not exist (relative paths are taken from the working directory)", source,
                   spec.path, value);
  }
}

std::pair<std::string, std::string> split_assignment(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw mrcnn::Error("expected key.path=value, got '" + text + "'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

void print_keys(bool markdown) {
  if (markdown) std::cout << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& spec : cfg::schema()) {
    const std::string limit = cfg::describe_limit(spec);
    const std::string expected = cfg::describe_expected(spec) + (limit.empty() ? "" : ", " + limit);
    if (markdown)
      std::cout << "| `" << spec.path << "` | " << expected << " | `" << spec.default_value.dump() << "` | "
                << spec.help << " |\n";
    else
      std::cout << spec.path << " = " << spec.default_value.dump() << "\n    " << spec.help << "\n    expects "
                << expected << "\n";
  }
}

// Real pipelines leave a few dozen fields behind; a hostile one can leave millions, which would
// bury the terminal: the rest are listed only with -v.
void report_not_carried_over(const std::vector<std::string>& warnings, const std::string& source) {
  constexpr size_t kShown = 100;
  for (size_t i = 0; i < warnings.size(); ++i) {
    if (i < kShown) mrcnn::log::warn("{}: {}", source, warnings[i]);
    else mrcnn::log::debug("{}: {}", source, warnings[i]);
  }
  if (warnings.size() > kShown)
    mrcnn::log::warn("{}: ... and {} more fields not carried over (-v lists them)", source, warnings.size() - kShown);
}

}  // namespace

int main(int argc, char** argv) {
  mrcnn::Tool tool("mrcnn-config",
                   "Create, inspect, edit, validate and compare mrcnn experiment configurations (JSON files of "
                   "overrides; every key not given takes its default).",
                   kExamples);
  CLI::App& app = tool.app();
  app.require_subcommand(1, 1);
  std::string file, other, preset, key, output, label_map;
  std::vector<std::string> assignments;
  bool force = false, markdown = false, exit_code = false;

  auto* init = app.add_subcommand("init", "Write a preset to a new configuration file");
  init->add_option("--preset", preset, "Preset name (see list-presets)")->required();
  init->add_option("-o,--output", output, "File to write")->required();
  init->add_flag("--force", force, "Overwrite the file if it exists");
  auto* list = app.add_subcommand("list-presets", "List the presets with their descriptions");
  auto* show = app.add_subcommand("show", "Print the fully resolved configuration (defaults filled in)");
  show->add_option("file", file, "Configuration file")->required();
  auto* get = app.add_subcommand("get", "Print the resolved value of a key or section");
  get->add_option("file", file, "Configuration file")->required();
  get->add_option("key", key, "Dotted key path, e.g. model.rpn.nms_thresh")->required();
  auto* set = app.add_subcommand("set", "Set keys (typed and validated) and write the file atomically");
  set->add_option("file", file, "Configuration file")->required();
  set->add_option("assignments", assignments, "key.path=value ... (lists and objects in JSON syntax)")->required();
  set->add_option("-o,--output", output, "Write here instead of rewriting FILE");
  auto* validate = app.add_subcommand("validate", "Report every problem: unknown keys, types, ranges, consistency");
  validate->add_option("file", file, "Configuration file")->required();
  auto* diff = app.add_subcommand("diff", "List the keys whose resolved values differ between two files");
  diff->add_option("a", file, "First configuration file")->required();
  diff->add_option("b", other, "Second configuration file")->required();
  diff->add_flag("--exit-code", exit_code, "Exit 1 when the configurations differ (as git diff --exit-code)");
  auto* import_tf = app.add_subcommand(
      "import-tf", "Convert a TF Object Detection API Mask R-CNN pipeline.config; lists every field not carried over");
  import_tf->add_option("pipeline", file, "pipeline.config (protobuf text format)")->required();
  import_tf->add_option("--label-map", label_map, "label_map.pbtxt (default: the input readers' label_map_path)");
  import_tf->add_option("-o,--output", output, "Configuration file to write")->required();
  import_tf->add_flag("--force", force, "Overwrite the file if it exists");
  auto* keys = app.add_subcommand("keys", "List every key with its type, default and meaning");
  keys->add_flag("--markdown", markdown, "As a Markdown table");

  return tool.run(argc, argv, [&]() -> int {
    if (*init) {
      const cfg::Preset& chosen = cfg::find_preset(preset);
      if (!force && std::filesystem::exists(output))
        throw mrcnn::Error(output + ": already exists (use --force to overwrite)");
      mrcnn::write_file_atomic(output, chosen.text);
      mrcnn::log::info("wrote preset {} to {}", chosen.name, output);
    } else if (*list) {
      for (const auto& p : cfg::presets()) std::cout << p.name << "\n    " << p.description << "\n";
    } else if (*show) {
      std::cout << cfg::load_resolved(file).dump(2) << "\n";
    } else if (*get) {
      std::cout << cfg::format_value(cfg::get_value(cfg::load_resolved(file), key)) << "\n";
    } else if (*set) {
      mrcnn::Json doc = cfg::load_config_file(file);
      for (const auto& assignment : assignments) {
        try {
          const auto [path, text] = split_assignment(assignment);
          cfg::set_value(doc, path, cfg::parse_value(path, text));
        } catch (const mrcnn::Error& e) {
          throw mrcnn::Error(file + ": " + e.what());
        }
      }
      const std::string target = output.empty() ? file : output;
      cfg::require_valid(doc, target);
      mrcnn::write_json_file(target, doc);
      mrcnn::log::info("set {} key(s), wrote {}", assignments.size(), target);
    } else if (*validate) {
      const mrcnn::Json doc = cfg::load_config_file(file);
      cfg::require_valid(doc, file);
      warn_missing_paths(cfg::resolve(doc), file);
      std::cout << file << ": valid\n";
    } else if (*diff) {
      const auto differences = cfg::diff(cfg::load_resolved(file), cfg::load_resolved(other));
      for (const auto& d : differences)
        std::cout << d.key << ": " << cfg::format_value(d.a) << " -> " << cfg::format_value(d.b) << "\n";
      if (exit_code && !differences.empty()) return 1;
    } else if (*import_tf) {
      if (!force && std::filesystem::exists(output))
        throw mrcnn::Error(output + ": already exists (use --force to overwrite)");
      const cfg::TfImport imported = cfg::import_tf_pipeline(mrcnn::read_text_proto_file(file), file, label_map);
      cfg::require_valid(imported.config, file + " (imported)");
      for (const auto& line : imported.mapped) mrcnn::log::debug("mapped {}", line);
      report_not_carried_over(imported.warnings, file);
      mrcnn::write_json_file(output, imported.config);
      mrcnn::log::info("wrote {}: {} fields mapped, {} not carried over (listed above)", output, imported.mapped.size(),
                       imported.warnings.size());
    } else if (*keys) {
      print_keys(markdown);
    }
    return 0;
  });
}
