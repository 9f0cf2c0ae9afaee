#include "config/import_tf_command.h"

#include <filesystem>
#include <memory>
#include <vector>

#include "config/config.h"
#include "config/tf_pipeline.h"
#include "core/error.h"
#include "core/log.h"
#include "core/subprocess.h"
#include "io/atomic_file.h"
#include "io/text_proto.h"

namespace mrcnn::config {

namespace {

// The weights need libtorch, which mrcnn-config does not load: mrcnn-infer converts them, and
// reports a checkpoint that does not fit as "mrcnn-config: error: mrcnn-infer: <why>".
void convert_checkpoint(const ImportTfCommand& command) {
  std::vector<std::string> argv = {sibling_executable("mrcnn-infer"), "--config", command.output, "--weights",
                                   command.checkpoint, "--save-model", command.save_model};
  if (!command.label_map.empty()) argv.insert(argv.end(), {"--label-map", command.label_map});
  run_child_tool(argv);  // its error line, if any, is the user's one line
}

}  // namespace

int run_import_tf_command(const ImportTfCommand& command) {
  // Both outputs are checked before either is written.
  for (const std::string& path : {command.output, command.save_model})
    if (!path.empty() && !command.force && std::filesystem::exists(path))
      throw Error(path + ": already exists (use --force to overwrite)");
  if (!command.save_model.empty()) check_output_file(command.save_model);
  const TfImport imported = import_tf_pipeline(read_text_proto_file(command.pipeline), command.pipeline,
                                               command.label_map);
  require_valid(imported.config, command.pipeline + " (imported)");
  for (const auto& line : imported.mapped) log::debug("mapped {}", line);
  log_not_carried_over(imported.warnings, command.pipeline);
  write_json_file(command.output, imported.config);
  log::info("wrote {}: {} fields mapped, {} not carried over (listed above)", command.output, imported.mapped.size(),
            imported.warnings.size());
  if (!command.checkpoint.empty()) convert_checkpoint(command);
  return 0;
}

std::pair<CLI::App*, std::function<int()>> add_import_tf_command(CLI::App& app) {
  auto command = std::make_shared<ImportTfCommand>();
  CLI::App* sub = app.add_subcommand(
      "import-tf", "Convert a TF Object Detection API Mask R-CNN pipeline.config; lists every field not carried over");
  sub->add_option("pipeline", command->pipeline, "pipeline.config (protobuf text format)")->required();
  sub->add_option("--label-map", command->label_map, "label_map.pbtxt (default: the input readers' label_map_path)");
  sub->add_option("-o,--output", command->output, "Configuration file to write")->required();
  sub->add_flag("--force", command->force, "Overwrite the configuration and the --save-model file if they exist");
  auto* save_model = sub->add_option("--save-model", command->save_model,
                                     "With --checkpoint: the self-contained model to write (weights, config, class names)");
  sub->add_option("--checkpoint", command->checkpoint,
                  "The TF checkpoint (prefix, training folder or SavedModel) of an Inception-ResNet-v2 Faster/Mask "
                  "R-CNN pipeline, converted by mrcnn-infer --save-model")
      ->needs(save_model);
  save_model->needs("--checkpoint");
  return {sub, [command] { return run_import_tf_command(*command); }};
}

}  // namespace mrcnn::config
