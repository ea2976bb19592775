// split_toml (config_tables.hpp).
#include "config_tables.hpp"

#include <algorithm>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <toml++/toml.h>

namespace cairn::gateway {

namespace {

// A table header line, "[a.b]" or "[[a.b]]" with an optional comment: its dotted name.
// (Only a name of bare or quoted keys counts, so an array's element on a line of its own,
// "[1, 2]", is not taken for one.)
const std::regex header(R"re(^\s*\[\[?\s*((?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*'))*)\s*\]\]?\s*(?:#.*)?$)re");
// A line that begins like a header.
const std::regex opening(R"re(^\s*\[\[?\s*["']?([A-Za-z0-9_-]+))re");
// A key-value line whose key starts with a table's name ("bindings.X.y = ...", "bindings = {").
const std::regex dotted(R"re(^\s*(["']?)([A-Za-z0-9_-]+)\1\s*[.=])re");

// How many brackets and braces `line` leaves open (strings and comments skipped): a line that
// starts inside an open array or inline table, or inside a multi-line string (`in_string`:
// the delimiter of one left open by the lines before), is a value's continuation, never a
// header.
int opened_by(const std::string& line, std::string& in_string) {
  int depth = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (!in_string.empty()) {
      if (line.compare(i, 3, in_string) == 0) {
        i += 2;
        in_string.clear();
      } else if (in_string == "\"\"\"" && line[i] == '\\') {
        ++i;
      }
      continue;
    }
    char c = line[i];
    if (c == '#') break;
    if (c == '"' || c == '\'') {
      if (line.compare(i, 3, std::string(3, c)) == 0) {
        in_string = std::string(3, c);
        i += 2;
        continue;
      }
      for (++i; i < line.size() && line[i] != c; ++i) {
        if (c == '"' && line[i] == '\\') ++i;
      }
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return depth;
}

// The first key of a dotted name, unquoted.
std::string first_key(const std::string& name) {
  std::string key;
  if (!name.empty() && (name[0] == '"' || name[0] == '\'')) {
    auto end = name.find(name[0], 1);
    return name.substr(1, end == std::string::npos ? std::string::npos : end - 1);
  }
  for (char c : name) {
    if (c == '.' || c == ' ' || c == '\t') break;
    key += c;
  }
  return key;
}

}  // namespace

SplitToml split_toml(const std::string& text, const std::vector<std::string>& tables) {
  // The file is cut, not rewritten: what CLI11 reads is the file's own lines (every value as
  // the user wrote it), less the tables' sections, which toml++ reads.
  SplitToml out{"", "{}", ""};
  auto is_table = [&](const std::string& key) {
    for (const auto& name : tables) {
      if (key == name) return true;
    }
    return false;
  };
  std::string rest, taken;
  std::vector<std::size_t> taken_lines;  // the file's line number of each line of `taken`
  bool inside = false;
  bool root = true;  // no header yet: a key here is a top-level one
  int depth = 0;  // brackets left open by the lines before
  std::string in_string;  // a multi-line string's delimiter, while one is open
  std::istringstream lines(text);
  std::string line;
  std::smatch match;
  for (std::size_t number = 1; std::getline(lines, line); ++number) {
    // What is matched: the line without a CR (a file with CRLF line ends) or a BOM.
    std::string bare = line;
    if (!bare.empty() && bare.back() == '\r') bare.pop_back();
    if (number == 1 && bare.rfind("\xEF\xBB\xBF", 0) == 0) bare.erase(0, 3);
    bool continued = depth > 0 || !in_string.empty();
    depth = std::max(0, depth + opened_by(bare, in_string));
    if (continued) {
      // part of the value before
    } else if (std::regex_search(bare, match, header)) {
      inside = is_table(first_key(match[1].str()));
      root = false;
      depth = 0;
    } else if (std::regex_search(bare, match, opening) && is_table(match[1].str()) &&
               bare.find('=') == std::string::npos) {
      throw std::runtime_error("line " + std::to_string(number) + ": a malformed table header: " + bare);
    } else if (root && std::regex_search(bare, match, dotted) && is_table(match[2].str())) {
      throw std::runtime_error("line " + std::to_string(number) + ": write " + match[2].str() + " as [" +
                               match[2].str() + ".NAME] tables, not as a key");
    }
    if (inside) {
      taken += line + "\n";
      taken_lines.push_back(number);
    } else {
      rest += line + "\n";
    }
  }
  if (taken.empty()) {
    out.rest = text;  // CLI11 reads the file as it always did
    return out;
  }
  toml::table parsed;
  try {
    parsed = toml::parse(taken);
  } catch (const toml::parse_error& e) {
    auto at = e.source().begin.line;
    auto number = at >= 1 && at <= taken_lines.size() ? taken_lines[at - 1] : taken_lines.back();
    throw std::runtime_error("line " + std::to_string(number) + ": " + std::string(e.description()));
  }
  // A safety net: whatever was taken must be the tables alone (a header the scan missed would
  // otherwise hide its section from CLI11 without a word).
  for (const auto& [key, value] : parsed) {
    if (!is_table(std::string(key.str()))) {
      throw std::runtime_error("line " + std::to_string(taken_lines[key.source().begin.line >= 1 && key.source().begin.line <= taken_lines.size() ? key.source().begin.line - 1 : 0]) +
                               ": '" + std::string(key.str()) + "' is read as part of a [" + tables.front() +
                               "...] section: put it before the first [" + tables.front() + ".NAME] table");
    }
  }
  std::ostringstream json;
  json << toml::json_formatter(parsed, toml::format_flags::quote_dates_and_times |
                                           toml::format_flags::quote_infinities_and_nans);
  out.rest = rest;
  out.tables_json = json.str();
  out.tables_toml = taken;
  return out;
}

}  // namespace cairn::gateway
