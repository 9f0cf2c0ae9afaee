#include "config/import_tf_command.h"

#include <filesystem>
#include <memory>
#include <vector>

#include "config/config.h"
#include "config/tf_pipeline.h"
#include "core/error.h"
#include "core/log.h"
#include "core/subprocess.h"
#include "core/temp_folder.h"
#include "io/atomic_file.h"
#include "io/text_proto.h"
#include "io/tf_checkpoint.h"

namespace mrcnn::config {

namespace {

// Everything the command reads or writes, checked before anything is written: both outputs (an
// existing one only with --force, a folder that takes a new file) and the checkpoint's files.
void check_inputs_and_outputs(const ImportTfCommand& command) {
  if (!command.output.empty() && !command.save_model.empty() && same_file(command.output, command.save_model))
    throw Error(command.save_model + ": both the configuration (-o) and --save-model (give each its own file)");
  const std::vector<std::string> checkpoint_files =
      command.checkpoint.empty() ? std::vector<std::string>{} : tf::checkpoint_files(command.checkpoint);
  for (const std::string& path : {command.output, command.save_model}) {
    if (path.empty()) continue;
    for (const std::string& input : checkpoint_files)
      if (same_file(path, input))
        throw Error(path + ": a file of the TF checkpoint " + command.checkpoint + ", which this command reads");
    for (const std::string* input : {&command.pipeline, &command.label_map})
      if (!input->empty() && same_file(path, *input))
        throw Error(path + ": the input " + *input + " itself (write the output to its own file)");
    if (!command.force && std::filesystem::exists(path)) throw Error(path + ": already exists (use --force to overwrite)");
    check_output_file(path);
  }
  if (!command.checkpoint.empty()) tf::resolve_checkpoint_prefix(command.checkpoint);  // Error naming it if absent
}

// The weights need libtorch, which mrcnn-config does not load: mrcnn-infer converts them from a
// private copy of the configuration, and reports a checkpoint that does not fit as
// "mrcnn-config: error: mrcnn-infer: <why>". The folder also installs the handler that ends the
// child with this process on SIGINT/SIGTERM/SIGHUP (core/temp_folder.h). Its --force: the outputs
// were checked above, with this command's --force.
void convert_checkpoint(const ImportTfCommand& command, const Json& config) {
  TemporaryFolder folder("mrcnn-import-tf-");
  const std::string staged = folder.file(std::filesystem::path(command.output).filename().string());
  write_json_file(staged, config);
  std::vector<std::string> argv = {sibling_executable("mrcnn-infer"), "--config", staged, "--weights",
                                   command.checkpoint, "--save-model", command.save_model, "--force"};
  if (!command.label_map.empty()) argv.insert(argv.end(), {"--label-map", command.label_map});
  run_child_tool(argv);  // its error line, if any, is the user's one line
}

}  // namespace

int run_import_tf_command(const ImportTfCommand& command) {
  check_inputs_and_outputs(command);
  const TfImport imported = import_tf_pipeline(read_text_proto_file(command.pipeline), command.pipeline,
                                               command.label_map);
  require_valid(imported.config, command.pipeline + " (imported)");
  for (const auto& line : imported.mapped) log::debug("mapped {}", line);
  log_not_carried_over(imported.warnings, command.pipeline);
  // The configuration last: a conversion that fails leaves nothing half done behind.
  if (!command.checkpoint.empty()) convert_checkpoint(command, imported.config);
  write_json_file(command.output, imported.config);
  log::info("wrote {}: {} fields mapped, {} not carried over (listed above)", command.output, imported.mapped.size(),
            imported.warnings.size());
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
