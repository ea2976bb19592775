// Tables of the config file that are not flags (cairn-server's [bindings.NAME]): CLI11 reads
// flat keys only, so such tables are taken out of the file with toml++ (Debian's
// libtomlplusplus-dev, a full TOML 1.0 parser) before CLI11 reads the rest.
#pragma once

#include <string>
#include <vector>

namespace cairn::gateway {

struct SplitToml {
  std::string rest;         // the file without the tables, as TOML (the text itself if it had none)
  std::string tables_json;  // {"<table>": {...}, ...} for each table present, as JSON ("{}" if none)
  std::string tables_toml;  // the same as TOML ("" if none): --print-config writes it back
};

// Splits `text` (a TOML file). Throws std::runtime_error naming the line and column of a
// syntax error.
SplitToml split_toml(const std::string& text, const std::vector<std::string>& tables);

}  // namespace cairn::gateway
