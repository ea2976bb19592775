// Arithmetic on /metrics readings for cairnctl top: the Prometheus text format parsed, counters
// turned into increases (a value lower than the one before is a reset, a restarted server:
// what it holds is the increase since), and quantiles of a histogram's observations between
// readings, interpolated within a bucket as Prometheus' histogram_quantile does.
// The inspector page does the same in JavaScript (gateway/admin/series.js); both pass the
// cases in tests/data/metrics_math.json. Written here rather than taken from a library:
// Debian packages no Prometheus client that parses the text format for C++ (prometheus-cpp
// only writes it), and this is about 150 lines.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::cli::metrics {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  bool operator==(const Sample&) const = default;
};

namespace detail {

inline std::optional<double> parse_value(std::string_view text) {
  if (text == "+Inf" || text == "Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text.empty()) return std::nullopt;
  // What the format writes for a number, and nothing else from_chars takes ("inf", "nan").
  if (text.find_first_not_of("+-0123456789.eE") != std::string_view::npos) return std::nullopt;
  if (text.front() == '+') text.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

inline bool space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

inline std::optional<Sample> parse_line(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && !space(line[i])) ++i;
  if (i == 0) return std::nullopt;
  Sample sample;
  sample.name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i >= line.size()) return std::nullopt;
      if (line[i] == '}') {
        ++i;
        break;
      }
      auto eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return std::nullopt;
      std::string label(line.substr(i, eq - i));
      while (!label.empty() && space(label.back())) label.pop_back();
      std::string value;
      std::size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return std::nullopt;
      sample.labels[label] = std::move(value);
      i = j + 1;
    }
  }
  while (i < line.size() && space(line[i])) ++i;
  std::size_t end = i;
  while (end < line.size() && !space(line[end])) ++end;
  auto value = parse_value(line.substr(i, end - i));
  if (!value) return std::nullopt;
  sample.value = *value;
  return sample;
}

}  // namespace detail

// Every sample line of `text`; comments, blank lines and lines that are not samples skipped.
inline std::vector<Sample> parse(std::string_view text) {
  std::vector<Sample> out;
  while (!text.empty()) {
    auto newline = text.find('\n');
    auto line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    while (!line.empty() && detail::space(line.front())) line.remove_prefix(1);
    while (!line.empty() && detail::space(line.back())) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (auto sample = detail::parse_line(line)) out.push_back(std::move(*sample));
  }
  return out;
}

using Match = std::map<std::string, std::function<bool(const std::string*)>>;
// A label that must equal `value`.
inline std::function<bool(const std::string*)> is(std::string value) {
  return [value = std::move(value)](const std::string* have) { return have && *have == value; };
}

inline bool matches(const Sample& sample, const Match& match) {
  for (const auto& [label, want] : match) {
    auto it = sample.labels.find(label);
    if (!want(it == sample.labels.end() ? nullptr : &it->second)) return false;
  }
  return true;
}

// The sum of the samples of `name` that match, by the value of label `by` ("" without).
inline std::map<std::string, double> sum_by(const std::vector<Sample>& samples, std::string_view name,
                                             const Match& match = {}, const std::string& by = {}) {
  std::map<std::string, double> sums;
  for (const auto& s : samples) {
    if (s.name != name || !matches(s, match)) continue;
    std::string key;
    if (!by.empty()) {
      auto it = s.labels.find(by);
      if (it != s.labels.end()) key = it->second;
    }
    sums[key] += s.value;
  }
  return sums;
}

// How much a counter grew over consecutive readings (nullopt: not there then).
inline double increase(const std::vector<std::optional<double>>& values) {
  double total = 0;
  std::optional<double> before;
  for (const auto& v : values) {
    if (!v || std::isnan(*v)) continue;
    if (before) total += *v >= *before ? *v - *before : *v;
    before = v;
  }
  return total;
}

using Buckets = std::vector<std::pair<double, double>>;  // [le, cumulative count] by le

// A histogram's cumulative buckets, summed over the matching series.
inline Buckets buckets(const std::vector<Sample>& samples, const std::string& name, const Match& match = {}) {
  std::map<double, double> by_le;
  for (const auto& [le, count] : sum_by(samples, name + "_bucket", match, "le")) {
    auto bound = detail::parse_value(le);
    if (bound && !std::isnan(*bound)) by_le[*bound] += count;
  }
  return {by_le.begin(), by_le.end()};
}

// Each bucket's increase over consecutive readings, made cumulative again.
inline Buckets bucket_increase(const std::vector<Buckets>& readings) {
  std::map<double, std::vector<std::optional<double>>> values;
  for (const auto& r : readings) {
    for (const auto& [le, count] : r) values.try_emplace(le);
  }
  for (auto& [le, list] : values) {
    for (const auto& r : readings) {
      auto it = std::find_if(r.begin(), r.end(), [le = le](const auto& b) { return b.first == le; });
      list.push_back(it == r.end() ? std::nullopt : std::optional<double>(it->second));
    }
  }
  Buckets out;
  double floor = 0;
  for (const auto& [le, list] : values) {
    floor = std::max(floor, increase(list));
    out.emplace_back(le, floor);
  }
  return out;
}

// The q quantile of the observations in cumulative buckets: linear within its bucket, the
// highest finite bound if past them all; nullopt if there are none.
inline std::optional<double> quantile(double q, const Buckets& counts) {
  if (counts.empty()) return std::nullopt;
  double total = counts.back().second;
  if (!(total > 0)) return std::nullopt;
  double rank = q * total;
  double lower_le = 0;
  double lower_count = 0;
  for (const auto& [le, count] : counts) {
    if (count >= rank) {
      if (std::isinf(le)) return lower_le;
      if (count == lower_count) return le;
      return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count);
    }
    lower_le = le;
    lower_count = count;
  }
  return lower_le;
}

}  // namespace cairn::cli::metrics
