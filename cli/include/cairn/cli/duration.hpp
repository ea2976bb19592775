// Duration flags for cairn's programs (cairn-server, cairn-load, the benchmarks, the crash
// test): a number with an optional unit, as wrk and curl users type them ("5s", "500ms",
// "2m", "1h"); a bare number is in the flag's own unit. Header-only, over CLI11.
#pragma once

#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace cairn::cli {

enum class Unit { seconds, milliseconds };

// Adds option `name` to `app`, storing into `value` in `unit` whatever unit was typed (ms,
// s, m, h). `value` must be arithmetic; an integer one takes whole numbers of its unit. A
// value with another unit, or none that parses, is refused by CLI11 with the flag's name.
// Further checks (a range, in `unit`) may be added to the returned option.
template <class T>
CLI::Option* add_duration(CLI::App& app, const std::string& name, T& value, const std::string& help,
                          Unit unit = Unit::seconds) {
  const double per_second = unit == Unit::seconds ? 1.0 : 1000.0;
  std::map<std::string, double> units{{"ms", per_second / 1000.0},
                                      {"s", per_second},
                                      {"m", 60.0 * per_second},
                                      {"h", 3600.0 * per_second}};
  return app.add_option(name, value, help)
      ->transform(CLI::AsNumberWithUnit(units, CLI::AsNumberWithUnit::CASE_SENSITIVE,
                                        unit == Unit::seconds ? "SECONDS" : "MILLISECONDS"));
}

}  // namespace cairn::cli
