// cairnctl top: the inspector's overview in a terminal. Reads /metrics and /admin/top every
// --interval and draws a table of rates and latencies (over the readings of the last few
// seconds) and the busiest, slowest and failing actors. On a terminal it takes the whole
// screen (the alternate one, restored at exit) and quits on q or Ctrl-C; otherwise it prints
// one frame per reading, --iterations of them.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace cairn::ctl {

struct TopOptions {
  std::string url;                                 // shown in the title
  std::chrono::milliseconds interval{2000};
  std::size_t window_seconds = 60;                 // for /admin/top
  std::size_t iterations = 0;                      // frames to draw (0: until q)
};

// `get` answers GET of an admin target ("/metrics", "/admin/top?...") with its body, or throws.
// Returns the exit status.
int run_top(const TopOptions& options, const std::function<std::string(const std::string&)>& get);

}  // namespace cairn::ctl
