// What a load run measures: latency series (one per kind of operation), a throughput
// timeline, errors by kind, and the correctness checks that decide the exit status.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checker.hpp"

namespace cairn::load {

using Clock = std::chrono::steady_clock;

// The latencies of one kind of operation. Each thread records into its own Series; they are
// merged at the end, so recording takes no lock.
class Series {
 public:
  // `latency` of one operation that completed `since_start` after the run began.
  void record(Clock::duration latency, Clock::duration since_start);
  void merge(const Series& other);
  std::size_t count() const { return micros_.size(); }

  struct Summary {
    std::uint64_t count = 0;
    double rate = 0;  // per second over the measured window
    // Milliseconds.
    double mean = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
    // (percentile, ms) points for the percentile chart, and completions in each second.
    std::vector<std::pair<double, double>> curve;
    std::vector<std::uint64_t> per_second;
  };
  // Sorts the samples; `seconds` is the window the rate is computed over.
  Summary summarize(double seconds);

 private:
  std::vector<std::uint32_t> micros_;
  std::vector<std::uint64_t> per_second_;
};

// Latency at percentile `p` (0..100) of sorted samples, nearest rank.
double percentile_ms(const std::vector<std::uint32_t>& sorted_micros, double p);

struct Check {
  std::string name;
  bool passed = false;
  std::string detail;
};

// What one thread saw. Merged into the run's result.
struct Tally {
  std::map<std::string, Series> series;
  std::map<std::string, std::uint64_t> errors;    // "http 503", "timeout", "connect: ...": count
  std::map<std::string, std::uint64_t> expected;  // outcomes the scenario allows ("409 seat taken")
  std::vector<BookingAttempt> bookings;           // every booking this thread tried
  void merge(Tally&& other);
};

struct RunResult {
  std::string scenario;
  nlohmann::json parameters;  // the flags that shaped the run
  double seconds = 0;         // the measured window
  std::map<std::string, Series::Summary> series;
  std::map<std::string, std::uint64_t> errors;
  std::map<std::string, std::uint64_t> expected;  // outcomes the scenario expects (409s under contention)
  std::vector<Check> checks;
  nlohmann::json extra = nlohmann::json::object();  // scenario-specific figures
  double wall_seconds = 0;  // the whole run, set-up and checks included (the CPU figures' window)
  double harness_cpu_seconds = 0;
  double server_cpu_seconds = -1;  // -1: no --server-pid
  bool passed() const;
};

// CPU seconds (user + system) used so far by this process, and by process `pid` (-1 if it
// cannot be read).
double own_cpu_seconds();
double process_cpu_seconds(int pid);

}  // namespace cairn::load
