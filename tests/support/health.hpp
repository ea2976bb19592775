// Polling a running server's GET /healthz, for tests of programs run as processes.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <thread>

#include "clients.hpp"

namespace cairn::testing {

// Waits (at most 5 s) until the server at `port` has no actor instance in memory.
inline bool hibernated(std::uint16_t port) {
  for (int i = 0; i < 200; ++i) {
    if (nlohmann::json::parse(http_get(port, "/healthz").body)["live_instances"] == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

}  // namespace cairn::testing
