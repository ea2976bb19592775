// Host: running an actor's due alarms, each as an event, and their retries.
#include "host.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>

#include <caf/all.hpp>

#include "cairn/limits.hpp"
#include "cairn/log_context.hpp"
#include "host_support.hpp"
#include "runtime_core.hpp"

namespace cairn {
using namespace host_support;

void Host::run_due_alarms() {
  if (!ensure_batch(ReplyTo{})) return;
  alarms_dirty_ = true;  // whatever happens, the index hears the truth at commit
  std::vector<DueAlarm> due;
  try {
    if (!alarm_table_exists()) return;
    ensure_alarm_trace_columns();
    auto rows = db_->internal(
        "SELECT name, due, retries, request_id, traceparent FROM _cairn_alarms WHERE due <= ? ORDER BY due LIMIT ?",
        std::vector<SqlValue>{to_ticks(core_->options.clock->now()),
                              static_cast<std::int64_t>(limits::max_alarms_per_wake)});
    auto text = [](const SqlValue& value) {
      const auto* s = std::get_if<std::string>(&value);
      return s != nullptr ? *s : std::string();
    };
    for (const auto& row : rows) {
      due.push_back({std::get<std::string>(row["name"]), std::get<std::int64_t>(row["due"]),
                     static_cast<int>(std::get<std::int64_t>(row["retries"])),
                     TraceContext{text(row["request_id"]), text(row["traceparent"])}});
    }
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot read its alarms: {}", id_.binding(), id_.hex(), e.what());
    abort_batch(storage_error(e, "the actor's alarms could not be read"));
    return;
  }
  for (const auto& alarm : due) {
    // An earlier handler of this wake may have moved or deleted it.
    try {
      auto still = db_->internal("SELECT due, retries FROM _cairn_alarms WHERE name = ?", {alarm.name});
      if (still.size() != 1 || std::get<std::int64_t>(still.one()["due"]) != alarm.due ||
          std::get<std::int64_t>(still.one()["retries"]) != alarm.retries) {
        continue;
      }
    } catch (const std::exception& e) {
      spdlog::error("actor {} {}: cannot read its alarms: {}", id_.binding(), id_.hex(), e.what());
      abort_batch(storage_error(e, "the actor's alarms could not be read"));
      return;
    }
    core_->alarm_late(core_->options.clock->now() - from_ticks(alarm.due));
    // The event that set it is what this one descends from (Context::trace(), the log lines).
    trace_ = alarm.trace;
    ScopedLogContext log_context({trace_.request_id, std::string(trace_id_of(trace_.traceparent))});
    auto outcome = run_event(
        [&] {
          // Consumed before the handler runs: if it sets the alarm again, that one stays.
          alarms_dirty_ = true;  // a commit inside this wake may have reported the index
          db_->internal("DELETE FROM _cairn_alarms WHERE name = ?", {alarm.name});
          instance_->on_alarm(AlarmInfo{alarm.name, alarm.retries, alarm.retries > 0});
        },
        ReplyTo{},
        detail::EventRecord{0, 0, 200, 0, detail::EventRecord::Kind::alarm,
                            alarm.name.empty() ? "(unnamed)" : detail::cut_utf8(alarm.name, limits::event_record_what_bytes), false});
    trace_ = {};
    if (outcome == Outcome::failed) return;
    core_->alarm_ran();
    if (outcome == Outcome::threw) schedule_retry(alarm);
  }
}

void Host::schedule_retry(const DueAlarm& alarm) {
  if (!ensure_batch(ReplyTo{})) return;
  int retries = alarm.retries + 1;
  alarms_dirty_ = true;  // the index must hear of the retry's time at commit
  try {
    db_->savepoint();
    if (retries > limits::alarm_max_retries) {
      db_->internal("DELETE FROM _cairn_alarms WHERE name = ? AND due = ? AND retries = ?",
                    std::vector<SqlValue>{alarm.name, alarm.due,
                                          static_cast<std::int64_t>(alarm.retries)});
      spdlog::error("actor {} {}: alarm '{}' dropped: on_alarm threw on {} attempts",
                    id_.binding(), id_.hex(), alarm.name, retries);
    } else {
      auto delay = alarm_retry_delay(retries);
      auto due = to_ticks(core_->options.clock->now() + delay);
      // The row is as it was before the handler ran (its event rolled back).
      db_->internal(
          "UPDATE _cairn_alarms SET due = ?, retries = ? WHERE name = ? AND due = ? AND retries = ?",
          std::vector<SqlValue>{due, static_cast<std::int64_t>(retries), alarm.name, alarm.due,
                                static_cast<std::int64_t>(alarm.retries)});
      spdlog::warn("actor {} {}: alarm '{}' threw; retry {} of {} in {} ms", id_.binding(),
                   id_.hex(), alarm.name, retries, limits::alarm_max_retries,
                   std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
    }
    db_->release();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot reschedule alarm '{}': {}", id_.binding(), id_.hex(),
                  alarm.name, e.what());
    abort_batch(storage_error(e, "the actor's alarms could not be rescheduled"));
  }
}

void Host::ensure_alarm_trace_columns() {
  // Asked every time, not remembered: an event rolled back undoes its ALTER TABLE too.
  auto columns = db_->internal("SELECT name FROM pragma_table_info('_cairn_alarms') "
                               "WHERE name IN ('request_id', 'traceparent')");
  if (columns.size() == 2) return;
  bool has_request_id = false;
  bool has_traceparent = false;
  for (const auto& row : columns) {
    const auto& name = std::get<std::string>(row["name"]);
    has_request_id = has_request_id || name == "request_id";
    has_traceparent = has_traceparent || name == "traceparent";
  }
  if (!has_request_id) db_->internal("ALTER TABLE _cairn_alarms ADD COLUMN request_id TEXT");
  if (!has_traceparent) db_->internal("ALTER TABLE _cairn_alarms ADD COLUMN traceparent TEXT");
}

bool Host::alarm_table_exists() {
  return db_->internal("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_cairn_alarms'")
             .size() == 1;
}

bool Host::identity_recorded() {
  if (db_->internal("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_cairn_actor'").size() != 1) {
    return false;
  }
  auto rows = db_->internal("SELECT binding, name FROM _cairn_actor");
  if (rows.size() != 1) return false;
  auto row = rows.one();
  auto* binding = std::get_if<std::string>(&row["binding"]);
  auto* name = std::get_if<std::string>(&row["name"]);
  return binding != nullptr && name != nullptr && *binding == id_.binding() && *name == id_.name();
}

void Host::record_identity() {
  db_->internal(
      "CREATE TABLE IF NOT EXISTS _cairn_actor (binding TEXT NOT NULL, name TEXT NOT NULL, "
      "created_ms INTEGER NOT NULL)");
  db_->internal("DELETE FROM _cairn_actor");
  db_->internal("INSERT INTO _cairn_actor (binding, name, created_ms) VALUES (?, ?, ?)",
                std::vector<SqlValue>{id_.binding(), id_.name(), unix_ms()});
}

std::optional<std::int64_t> Host::soonest_alarm() {
  if (!alarm_table_exists()) return std::nullopt;
  auto soonest = db_->internal("SELECT min(due) AS due FROM _cairn_alarms").one()["due"];
  if (auto* due = std::get_if<std::int64_t>(&soonest)) return *due;
  return std::nullopt;
}

}  // namespace cairn
