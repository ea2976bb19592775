// RuntimeCore: the alarm index's scheduler: which actors to wake, and when.
#include "runtime_core.hpp"

#include <caf/all.hpp>

#include "cairn/limits.hpp"

namespace cairn::detail {

void RuntimeCore::alarms_committed(const ActorId& id, std::optional<std::int64_t> soonest) {
  if (alarms_->after_commit(id, soonest)) {
    {
      std::lock_guard lock(alarm_mutex_);
      alarm_kick_ = true;
    }
    alarm_cv_.notify_one();
  }
}

std::size_t RuntimeCore::fire_due_alarms() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return 0;
  }
  auto now = options.clock->now();
  auto retry_at = now + std::chrono::duration_cast<Clock::duration>(limits::alarm_dispatch_lease);
  std::size_t fired = 0;
  for (;;) {
    auto due = alarms_->take_due(now.time_since_epoch().count(), retry_at.time_since_epoch().count(),
                                 1024);
    for (const auto& id : due) deliver(id, Event{AlarmEvent{}});
    fired += due.size();
    if (due.size() < 1024) return fired;
  }
}

void RuntimeCore::alarm_loop() {
  std::unique_lock lock(alarm_mutex_);
  while (!alarm_stop_) {
    lock.unlock();
    fire_due_alarms();
    alarms_->flush();
    auto wait = std::chrono::milliseconds(1000);
    if (auto next = alarms_->next_due()) {
      auto until = Clock::time_point{Clock::duration{*next}} - options.clock->now();
      wait = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(until),
                        std::chrono::milliseconds(0), wait);
    }
    lock.lock();
    alarm_cv_.wait_for(lock, wait, [this] { return alarm_stop_ || alarm_kick_; });
    alarm_kick_ = false;
  }
}

}  // namespace cairn::detail
