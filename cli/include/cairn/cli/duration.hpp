// Duration flags for cairn's programs (cairn-server, cairn-load, the benchmarks, the crash
// test): a number with an optional unit, as wrk and curl users type them ("5s", "500ms",
// "2m", "1h"); a bare number is in the flag's own unit. Header-only, over CLI11.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace cairn::cli {

enum class Unit { seconds, milliseconds };

// Adds option `name` to `app`, storing into `value` in `unit` whatever unit was typed (ms,
// s, m, h). `value` must be arithmetic; an integer one takes whole numbers of its unit. A
// value with another unit, or none that parses, is refused by CLI11 with the flag's name.
// Further checks (a range, in `unit`) may be added to the returned option.
// The units a duration may be typed in, each as a number of `unit`s.
inline std::map<std::string, double> duration_units(Unit unit) {
  const double per_second = unit == Unit::seconds ? 1.0 : 1000.0;
  return {{"ms", per_second / 1000.0}, {"s", per_second}, {"m", 60.0 * per_second}, {"h", 3600.0 * per_second}};
}

// `text` as a number of `unit`s, read as the duration flags read it ("5s", "500ms"; a bare
// number is in `unit`), or nullopt (for a duration in a config table that is not a flag).
inline std::optional<double> parse_duration(std::string text, Unit unit = Unit::seconds) {
  CLI::AsNumberWithUnit convert(duration_units(unit), CLI::AsNumberWithUnit::CASE_SENSITIVE);
  double value = 0;
  try {
    if (!convert(text).empty() || !CLI::detail::lexical_cast(text, value)) return std::nullopt;
  } catch (const CLI::Error&) {  // the converter throws for an unknown unit
    return std::nullopt;
  }
  return value;
}

template <class T>
CLI::Option* add_duration(CLI::App& app, const std::string& name, T& value, const std::string& help,
                          Unit unit = Unit::seconds) {
  return app.add_option(name, value, help)
      ->transform(CLI::AsNumberWithUnit(duration_units(unit), CLI::AsNumberWithUnit::CASE_SENSITIVE,
                                        unit == Unit::seconds ? "SECONDS" : "MILLISECONDS"));
}

}  // namespace cairn::cli
