// What every cairn program does on its command line, over CLI11:
// - `--version`: the program, cairn's version, the git commit and the build type.
// - parse(): exit codes the same everywhere: 0 for --help and --version, 2 for bad usage or
//   configuration (one line on stderr naming what was wrong), -1 to go on.
// - configure() (programs with many flags, like cairn-server): `--config FILE` (TOML; a key
//   is a flag's name without its dashes; a key K in a section [S] means the flag --S-K if
//   there is one, else --K, so [admin] port = 9000 is --admin-port and [limits] may group
//   any flags), `CAIRN_<FLAG>` environment variables for every flag (--admin-port:
//   CAIRN_ADMIN_PORT), and `--print-config`. Precedence: flags > environment > file >
//   defaults. An unknown key or a bad value is an error naming it (exit 2).
#pragma once

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <sstream>
#include <iostream>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "cairn/cli/version.hpp"

namespace cairn::cli {

inline std::string version_text(const std::string& program) {
  return program + " " + CAIRN_VERSION + " (commit " + CAIRN_GIT_COMMIT + ", " + CAIRN_BUILD_TYPE +
         " build)";
}

inline void add_version(CLI::App& app, const std::string& program) {
  app.set_version_flag("--version", version_text(program),
                       "print the version, git commit and build type, then exit");
}

// The environment variable of flag --name: CAIRN_NAME with '-' as '_'.
inline std::string environment_name(const std::string& flag) {
  std::string out = "CAIRN_";
  for (char c : flag.substr(flag.find_first_not_of('-'))) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

// TOML whose sections name flag prefixes (see the top of this file). A key whose flag is
// set in the environment is left out: the environment comes before the file (CLI11 would
// read the file first and then skip the variable).
// `filter`, when set, gets the file's text first and returns what CLI11 reads (run_app takes
// the [bindings.NAME] tables out: cairn/gateway/app.hpp); what it throws is a config error.
class SectionedToml : public CLI::ConfigTOML {
 public:
  using Filter = std::function<std::string(const std::string& text)>;
  explicit SectionedToml(const CLI::App* app, Filter filter = {}) : app_(app), filter_(std::move(filter)) {}
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> out;
    std::istringstream filtered;
    if (filter_) {
      std::string text{std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>()};
      try {
        filtered.str(filter_(text));
      } catch (const std::exception& e) {
        throw CLI::ConfigError(e.what(), CLI::ExitCodes::ConfigError);
      }
    }
    for (auto& item : CLI::ConfigTOML::from_config(filter_ ? filtered : input)) {
      if (item.name == "++" || item.name == "--") continue;  // CLI11's section marks
      if (!item.parents.empty()) {
        std::string section = CLI::detail::join(item.parents, "-");
        if (app_->get_option_no_throw("--" + section + "-" + item.name) != nullptr) {
          item.name = section + "-" + item.name;
        } else if (app_->get_option_no_throw("--" + item.name) == nullptr) {
          item.name =
              CLI::detail::join(item.parents, ".") + "." + item.name;  // unknown: named in full
        }
        item.parents.clear();
      }
      if (const auto* option = app_->get_option_no_throw("--" + item.name)) {
        auto variable = option->get_envname();
        if (!variable.empty() && std::getenv(variable.c_str()) != nullptr) continue;
      }
      out.push_back(std::move(item));
    }
    return out;
  }

 private:
  const CLI::App* app_;
  Filter filter_;
};

struct Configured {
  CLI::Option* config = nullptr;
  CLI::Option* print_config = nullptr;
};

// Call after every flag is added. `program` names the program in messages.
inline Configured configure(CLI::App& app, SectionedToml::Filter filter = {}) {
  for (auto* option : app.get_options()) {
    auto name = option->get_single_name();
    if (name.empty() || name == "help" || name == "version") continue;
    option->envname(environment_name(name));
  }
  Configured out;
  const std::string help =
      "print the configuration these flags, CAIRN_* variables and --config make, as a TOML file "
      "for --config, then "
      "exit";
  out.print_config = app.add_flag("--print-config", help)->configurable(false);
  // CAIRN_CONFIG names the file when --config does not (as its default: CLI11 reads the
  // file before it looks at the environment).
  const char* from_environment = std::getenv("CAIRN_CONFIG");
  std::string default_file = from_environment != nullptr ? from_environment : "";
  out.config = app.set_config(
      "--config", default_file,
      "read flags from this TOML file (keys: flag names; see README); also $CAIRN_CONFIG",
      !default_file.empty());
  app.config_formatter(std::make_shared<SectionedToml>(&app, std::move(filter)));
  app.allow_config_extras(CLI::config_extras_mode::error);
  return out;
}

// The effective configuration as a TOML file --config reads back: every flag set (by a flag,
// the environment or a file) with its value; the others commented out with their default.
inline std::string print_config(const CLI::App& app) {
  auto toml_value = [](const std::string& value) {
    if (value == "true" || value == "false") return value;
    char* end = nullptr;
    std::strtod(value.c_str(), &end);
    if (!value.empty() && end == value.c_str() + value.size() &&
        value.find_first_of("xXnN") == std::string::npos) {
      return value;
    }
    std::string quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    return quoted + "\"";
  };
  std::string out;
  for (const auto* option : app.get_options()) {
    auto name = option->get_single_name();
    if (name.empty() || !option->get_configurable() || name == "help" || name == "version" ||
        name == "config") {
      continue;
    }
    if (option->count() == 0) {
      auto fallback = option->get_default_str();
      if (fallback.empty() && option->get_type_size() == 0) fallback = "false";
      out += "# " + name + " = " + (fallback.empty() ? std::string() : toml_value(fallback)) + "\n";
      continue;
    }
    if (option->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll) {  // a list: every value
      std::string list;
      for (const auto& value : option->results()) list += (list.empty() ? "" : ", ") + toml_value(value);
      out += name + " = [" + list + "]\n";
      continue;
    }
    auto value = option->get_type_size() == 0 ? std::string(option->as<bool>() ? "true" : "false")
                                              : option->results().back();
    out += name + " = " + toml_value(value) + "\n";
  }
  return out;
}

// Parses; returns -1 to go on, else the exit status (help and version printed: 0; anything
// wrong: one line on stderr, 2).
inline int parse(CLI::App& app, int argc, char** argv, const std::string& program) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    for (auto& c : message) {
      if (c == '\n') c = ' ';
    }
    std::string file;
    if (const auto* config = app.get_option_no_throw("--config");
        config != nullptr && !config->empty()) {
      file = config->results().front();
    }
    if (const auto* unknown = dynamic_cast<const CLI::ConfigError*>(&e);
        unknown != nullptr && !file.empty()) {
      const std::string extra = "INI was not able to parse ";
      if (message.rfind(extra, 0) == 0)
        message = "unknown key '" + message.substr(extra.size()) + "'";
      message = file + ": " + message;
    } else if (!file.empty()) {
      message += " (the flags, CAIRN_* variables or " + file + ")";
    }
    std::fprintf(stderr, "%s: %s\n", program.c_str(), message.c_str());
    return 2;
  }
}

}  // namespace cairn::cli
