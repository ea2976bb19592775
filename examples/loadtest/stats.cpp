#include "stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

namespace cairn::load {

void Series::record(Clock::duration latency, Clock::duration since_start) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
  micros_.push_back(static_cast<std::uint32_t>(std::clamp<long long>(us, 0, UINT32_MAX)));
  auto second = static_cast<std::size_t>(std::max<long long>(
      0, std::chrono::duration_cast<std::chrono::seconds>(since_start).count()));
  if (per_second_.size() <= second) per_second_.resize(second + 1, 0);
  ++per_second_[second];
}

void Series::merge(const Series& other) {
  micros_.insert(micros_.end(), other.micros_.begin(), other.micros_.end());
  if (per_second_.size() < other.per_second_.size()) per_second_.resize(other.per_second_.size(), 0);
  for (std::size_t i = 0; i < other.per_second_.size(); ++i) per_second_[i] += other.per_second_[i];
}

double percentile_ms(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

Series::Summary Series::summarize(double seconds) {
  std::sort(micros_.begin(), micros_.end());
  Summary s;
  s.count = micros_.size();
  s.rate = seconds > 0 ? static_cast<double>(s.count) / seconds : 0;
  if (!micros_.empty()) {
    double total = std::accumulate(micros_.begin(), micros_.end(), 0.0);
    s.mean = total / static_cast<double>(micros_.size()) / 1000.0;
    s.p50 = percentile_ms(micros_, 50);
    s.p90 = percentile_ms(micros_, 90);
    s.p99 = percentile_ms(micros_, 99);
    s.p999 = percentile_ms(micros_, 99.9);
    s.max = micros_.back() / 1000.0;
    for (double p : {0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0}) {
      s.curve.emplace_back(p, p == 0.0 ? micros_.front() / 1000.0 : percentile_ms(micros_, p));
    }
  }
  s.per_second = per_second_;
  // The last second is usually cut short by the end of the window: leave it out.
  auto whole = static_cast<std::size_t>(seconds);
  if (whole >= 1 && s.per_second.size() > whole) s.per_second.resize(whole);
  return s;
}

void Tally::merge(Tally&& other) {
  for (auto& [name, s] : other.series) series[name].merge(s);
  for (auto& [kind, n] : other.errors) errors[kind] += n;
  for (auto& [kind, n] : other.expected) expected[kind] += n;
  bookings.insert(bookings.end(), std::make_move_iterator(other.bookings.begin()),
                  std::make_move_iterator(other.bookings.end()));
}

bool RunResult::passed() const {
  return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.passed; });
}

double own_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

double process_cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (pid <= 0 || !std::getline(in, line)) return -1;
  // Fields after the command name (which may hold spaces, so start after its ')').
  auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace cairn::load
