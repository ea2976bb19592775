// What tests and benchmarks read of a server from outside: its resident memory, and one
// sample of its Prometheus text.
#pragma once

#include <sys/types.h>

#include <fstream>
#include <string>

namespace cairn::testing {

// The process's resident memory in KiB (/proc/PID/status VmRSS), or -1.
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The value of sample `name{labels}` in Prometheus text `text`, or `absent`.
inline double metric_sample(const std::string& text, const std::string& sample, double absent = 0) {
  auto at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return absent;
  return std::stod(text.substr(at + sample.size() + 2));
}

}  // namespace cairn::testing
