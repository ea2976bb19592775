// Blocking helpers for tests: wait for a future or a condition with a deadline. The blocking
// fetch/call on a Stub are the library's (cairn/testing.hpp).
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

#include "cairn/stub.hpp"
#include "cairn/testing.hpp"

namespace cairn::testing {

template <class T>
T wait_for(std::future<T>& future) {
  if (future.wait_for(reply_deadline) != std::future_status::ready) {
    throw std::runtime_error("no reply within the deadline");
  }
  return future.get();
}

// Polls `condition` until it holds or the deadline passes; returns its last value. For
// effects that happen on another thread (a host finishing its eviction, a message arriving).
template <class F>
bool eventually(F condition, std::chrono::milliseconds deadline = reply_deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

inline Request get(std::string target) { return Request{"GET", std::move(target), {}, {}, 0}; }
inline Request post(std::string target, std::string body) {
  return Request{"POST", std::move(target), {{"Content-Type", "application/json"}}, std::move(body), 0};
}

}  // namespace cairn::testing
