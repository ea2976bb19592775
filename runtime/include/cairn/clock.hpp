// Time as the runtime and actors see it; injectable so tests advance time instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>

namespace cairn {

class Clock {
 public:
  using time_point = std::chrono::system_clock::time_point;
  using duration = time_point::duration;
  virtual ~Clock() = default;
  // Thread-safe.
  virtual time_point now() const = 0;
};

class SystemClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point{}) : now_(start.time_since_epoch().count()) {}
  time_point now() const override { return time_point{time_point::duration{now_.load()}}; }
  void advance(std::chrono::system_clock::duration d) { now_ += d.count(); }

 private:
  std::atomic<time_point::rep> now_;
};

}  // namespace cairn
