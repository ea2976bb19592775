// What the host's files share: time stamps as stored in _cairn_alarms, the alarm retry
// delay, and how a storage failure is told from a bug. Private to the host.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <exception>
#include <random>
#include <string>

#include "cairn/clock.hpp"
#include "cairn/limits.hpp"
#include "cairn/result.hpp"
#include "cairn/sql.hpp"

namespace cairn::host_support {

inline std::int64_t to_ticks(Clock::time_point t) { return t.time_since_epoch().count(); }
inline Clock::time_point from_ticks(std::int64_t ticks) {
  return Clock::time_point{Clock::time_point::duration{ticks}};
}

// limits::alarm_retry_base doubling with each retry, plus up to a quarter of jitter so the
// retries of alarms that failed together spread out.
inline Clock::duration alarm_retry_delay(int retry) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  auto base = std::chrono::duration_cast<std::chrono::milliseconds>(limits::alarm_retry_base) *
              (1 << (retry - 1));
  std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(0, base.count() / 4);
  return base + std::chrono::milliseconds(jitter(random));
}

// True for an exception that says the actor's storage failed (I/O, a full disk, a file that
// cannot be opened), as opposed to a bug in the actor or bad SQL.
inline bool is_storage_failure(const std::exception& e) {
  auto* sql = dynamic_cast<const SqlError*>(&e);
  if (sql == nullptr) return false;
  int primary = sql->code() & 0xff;
  return primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN ||
         primary == SQLITE_NOMEM || primary == SQLITE_READONLY;
}

// What the callers of a batch that broke are told: 507 for a full disk, 503 for another
// storage failure (both retryable; the instance reopens its database on the next event),
// 500 for anything else (a constraint the actor's writes broke at commit, a bug).
inline Error storage_error(const std::exception& e, const std::string& what) {
  if (!is_storage_failure(e)) return Error{Code::internal, what + ": " + e.what()};
  if ((dynamic_cast<const SqlError&>(e).code() & 0xff) == SQLITE_FULL) {
    return Error{Code::storage_full, what + ": the disk is full"};
  }
  return Error{Code::unavailable, what + ": the actor's storage failed"};
}

}  // namespace cairn::host_support
