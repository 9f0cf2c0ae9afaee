#include "core/tool.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "core/subprocess.h"
#include "core/version.h"

namespace mrcnn {
namespace {

// Library exceptions from libtorch carry a C++ backtrace after the first line; users need the first.
std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// An option token ("--foo", "-x", "--foo=1") that neither the app nor any subcommand knows.
// CLI11 checks required options before unknown ones; users who mistype a flag should hear
// about the typo, not about a missing option.
bool is_known_option(const CLI::App& app, const std::string& name) {
  for (const CLI::Option* option : app.get_options())
    if (option->check_name(name)) return true;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    if (is_known_option(*sub, name)) return true;
  return false;
}

std::string first_unknown_option(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string token = argv[i];
    if (token == "--") break;
    if (token.size() < 2 || token[0] != '-' || std::isdigit(static_cast<unsigned char>(token[1]))) continue;
    token = token.substr(0, token.find('='));
    if (token.rfind("--", 0) != 0 && token.size() > 2) token = token.substr(0, 2);  // -xVALUE
    if (!is_known_option(app, token)) return argv[i];
  }
  return "";
}

// "mrcnn-infer: error: ", or run by another tool (mrcnn-eval --config runs mrcnn-infer) that tool's
// line naming this one, "mrcnn-eval: error: mrcnn-infer: ": the user reads one line, under the name
// of the command they typed, and the parent prints nothing more.
std::string message_prefix(const std::string& name, const std::string& kind) {
  const char* parent = std::getenv(kParentToolVariable);
  if (parent == nullptr || *parent == '\0') return name + ": " + kind + ": ";
  return std::string(parent) + ": " + kind + ": " + name + ": ";
}

// Error's message, one line per problem, each with the tool's prefix.
void print_error_lines(const std::string& name, const std::string& message) {
  for (size_t start = 0; start <= message.size();) {
    const size_t end = std::min(message.find('\n', start), message.size());
    std::cerr << message_prefix(name, "error") << message.substr(start, end - start) << "\n";
    start = end + 1;
  }
}

}  // namespace

Tool::Tool(std::string name, const std::string& description, const std::string& examples)
    : name_(std::move(name)), app_(description, name_) {
  app_.set_version_flag("--version", version_line(name_), "Print the version and the library versions, then exit");
  app_.add_flag("-v,--verbose", verbose_, "Print debug messages");
  if (!examples.empty()) app_.footer("Examples:\n" + examples);
  app_.get_formatter()->column_width(34);
}

int Tool::run(int argc, char** argv, const std::function<int()>& body) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app_.exit(e);  // --help, --version
    const std::string unknown = first_unknown_option(app_, argc, argv);
    const std::string message = unknown.empty() ? e.what() : "unknown option '" + unknown + "'";
    std::cerr << message_prefix(name_, "error") << message << " (see " << name_ << " --help)\n";
    return kExitBadInput;
  }
  log::init(verbose_);
  try {
    return body();
  } catch (const ReportedFailure& e) {
    return e.exit_code();
  } catch (const ChildKilled& e) {
    print_error_lines(name_, e.what());
    return e.exit_code();
  } catch (const Error& e) {
    print_error_lines(name_, e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << message_prefix(name_, "internal error") << first_line(e.what()) << "\n";
    log::debug("full message: {}", e.what());
    return kExitInternalError;
  }
}

}  // namespace mrcnn
