// split_toml (config_tables.hpp).
#include "config_tables.hpp"

#include <sstream>
#include <stdexcept>

#include <toml++/toml.h>

namespace cairn::gateway {

namespace {

constexpr auto plain = toml::format_flags::quote_dates_and_times | toml::format_flags::quote_infinities_and_nans;

// One value on one line: CLI11's reader takes no array over several lines (toml++ wraps long
// ones) and no literal or multi-line string.
std::string one_line(const toml::node& value) {
  if (const auto* array = value.as_array()) {
    std::string out = "[";
    for (const auto& element : *array) out += (out.size() > 1 ? ", " : "") + one_line(element);
    return out + "]";
  }
  std::ostringstream out;
  out << toml::toml_formatter(value, plain);
  return out.str();
}

// `table` as [section] headers (dotted for nested ones) and key = value lines.
void write_flat(std::ostream& out, const toml::table& table, const std::string& name) {
  for (const auto& [key, value] : table) {
    if (!value.is_table()) out << key.str() << " = " << one_line(value) << "\n";
  }
  for (const auto& [key, value] : table) {
    if (!value.is_table()) continue;
    std::string section = name.empty() ? std::string(key.str()) : name + "." + std::string(key.str());
    out << "[" << section << "]\n";
    write_flat(out, *value.as_table(), section);
  }
}

}  // namespace

SplitToml split_toml(const std::string& text, const std::vector<std::string>& tables) {
  SplitToml out{text, "{}", ""};
  bool mentioned = false;
  for (const auto& name : tables) mentioned = mentioned || text.find(name) != std::string::npos;
  if (!mentioned) return out;  // CLI11 reads the file as it always did
  toml::table whole;
  try {
    whole = toml::parse(text);
  } catch (const toml::parse_error& e) {
    std::ostringstream message;
    message << "line " << e.source().begin.line << ", column " << e.source().begin.column << ": " << e.description();
    throw std::runtime_error(message.str());
  }
  toml::table taken;
  bool any = false;
  for (const auto& name : tables) {
    auto* node = whole.get(name);
    if (node == nullptr) continue;
    auto* table = node->as_table();
    if (table == nullptr) throw std::runtime_error("'" + name + "' must be a table ([" + name + ".NAME])");
    taken.insert_or_assign(name, *table);
    whole.erase(name);
    any = true;
  }
  if (!any) return out;
  std::ostringstream rest;
  write_flat(rest, whole, "");
  std::ostringstream toml_text;
  toml_text << toml::toml_formatter(taken, plain);
  out.tables_toml = toml_text.str();
  std::ostringstream json;
  json << toml::json_formatter(taken, plain);
  out.rest = rest.str();
  out.tables_json = json.str();
  return out;
}

}  // namespace cairn::gateway
