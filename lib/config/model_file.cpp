#include "config/model_file.h"

#include "config/config.h"
#include "core/error.h"

namespace mrcnn::config {

void write_model_file(const std::string& path, const StateDict& weights, int64_t step, const Json& config,
                      const data::LabelMap& labels) {
  Json label_json = Json::object();
  for (const auto& [id, name] : labels.names()) label_json[std::to_string(id)] = name;
  write_safetensors(path, weights,
                    {{"format", "mrcnn model"}, {"step", std::to_string(step)}, {"config", config.dump()},
                     {"label_map", label_json.dump()}});
}

ModelFile read_model_file(const std::string& path) {
  const auto metadata = read_safetensors_metadata(path);
  if (!metadata.count("config") || metadata.count("format") == 0 || metadata.at("format") != "mrcnn model")
    throw Error(path + ": not a self-contained mrcnn model (no config in its metadata; give "
                "--config and --weights for plain weight files)");
  ModelFile model;
  // Checked like a configuration file: the model file may come from anywhere.
  const Json embedded = parse_json(metadata.at("config"), path + ": embedded config");
  config::require_valid(embedded, path + ": embedded config");
  model.config = config::resolve(embedded);
  if (metadata.count("label_map")) {
    const std::string source = path + ": embedded label_map";
    model.labels = data::LabelMap::from_json(parse_json_data(metadata.at("label_map"), source), source);
  }
  model.weights = path;
  return model;
}

}  // namespace mrcnn::config
