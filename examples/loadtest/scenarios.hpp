// The scenarios of cairn-load. Each speaks the seat-booking API of DESIGN.md (plus, where
// named, cairn's hold/cancel extensions), measures, and checks what the server promised.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "client.hpp"
#include "stats.hpp"

namespace cairn::load {

struct Options {
  std::string scenario;
  std::string url = "http://127.0.0.1:8787";
  std::string cacert;  // https://: the certificates to trust (empty: the system's)
  unsigned connections = 16;   // closed loop: requests in flight; open loop: connections
  double rate = 0;             // > 0: open loop at this many requests per second
  double duration = 5;         // seconds of measurement
  std::uint64_t requests = 0;  // > 0: stop after this many (also ends a run early)
  unsigned flights = 1;
  unsigned sockets = 100;      // fanout, hibernate: sockets per flight
  double contention = 0;       // book: share of bookings aimed at a seat already tried
  unsigned threads = 2;        // the harness's I/O threads
  std::string prefix;          // flight ids are PREFIX-...; default: fresh per run
  double timeout = 10;         // seconds a request may take before it counts as "timeout"
  double idle_wait = 12;       // hibernate: seconds to wait for the server to evict (at most)
  std::string path = "/healthz";  // get: the path to GET
  std::vector<std::string> headers;  // "Name: value", sent with every HTTP request
  std::string dir = ".";       // disk: where to append
  bool expect_overload = false;   // 503 is an expected answer, not an error
  int server_pid = 0;          // report this process's CPU beside the harness's
  bool progress = false;       // a live progress line on stderr
};

struct ScenarioInfo {
  std::string name;
  std::string summary;
};
const std::vector<ScenarioInfo>& scenarios();

// Runs `options.scenario` and returns what it measured and checked. Throws
// std::invalid_argument for bad options.
RunResult run(const Options& options);

// Progress of the running scenario (operations completed), for the progress line.
extern std::atomic<std::uint64_t> progress_count;

}  // namespace cairn::load
