// Metrics in the Prometheus text exposition format (version 0.0.4): a lock-free histogram
// and a writer of families and samples. No packaged C++ Prometheus client is in Debian
// (prometheus-cpp is not packaged for bookworm), so cairn keeps its own small writer.
// Used by the runtime (Runtime::write_metrics) and the gateway's admin listener (GET /metrics).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Fixed upper bounds (ascending; +Inf is implicit). observe() is lock-free and may run on
// any thread; a snapshot taken meanwhile may be off by the observations in flight.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    std::uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

// Seconds from 100 us to 10 s: request, commit (fsync) and alarm lateness histograms.
std::vector<double> seconds_buckets();
// start, start*factor, ... (count bounds).
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

// True for a valid metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]* (no ':' in label names).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
// A label value with \, " and newline escaped.
std::string escape_label_value(std::string_view value);
// A sample value: integers without a fraction, otherwise shortest round-trip; NaN, +Inf, -Inf.
std::string format_value(double value);

// Builds one exposition. Call family() once per metric name, then its samples. A name or
// label that is not valid throws std::invalid_argument (a bug in the caller).
class TextWriter {
 public:
  // type: "counter", "gauge" or "histogram". help: one line (newlines and \ are escaped).
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  // name_bucket{le=...}, name_sum and name_count for the family `name`.
  void histogram(std::string_view name, const Labels& labels, const Histogram::Snapshot& snapshot);
  const std::string& text() const noexcept { return out_; }

 private:
  void write_labels(const Labels& labels, const std::pair<std::string, std::string>* extra);
  std::string out_;
};

// The content type of the exposition.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace cairn::metrics
