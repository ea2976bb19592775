// Admin: what an operator can do to a running runtime's actors. List them by name (evicted
// ones and ones not woken since a restart included: the runtime's names index), inspect
// one, run a read-only SQL query on its database, export it as a SQLite file and import one
// into a new actor, delete it, evict it, and back up every database while serving.
// restore_backup() turns such a backup into a data directory (offline).
// Every call blocks until done (an operation on an actor waits for the actor's thread, at
// most limits::admin_operation_timeout): call from a thread of your own, never from an
// actor. Thread-safe. The gateway's admin listener serves it over HTTP (README "Operating
// cairn"); results are the JSON bodies it answers with.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cairn/result.hpp"
#include "cairn/runtime.hpp"

namespace cairn {

class Admin {
 public:
  explicit Admin(Runtime& runtime);

  // [{"binding", "actors" (with a database), "live", "hibernated"}], by binding.
  nlohmann::json bindings() const;
  // {"actors": [{"name", "id", "created_ms", "live", "websockets"}], "next": name or null}:
  // names starting with `prefix`, after `after`, in byte order, at most `limit` (1-1000).
  Result<nlohmann::json> list(std::string_view binding, std::string_view prefix,
                              std::string_view after, std::size_t limit) const;
  // {"binding", "name", "id", "live", "instance", "last_event_ms", "database_bytes",
  //  "tables": [{"name", "type", "rows"}], "alarms": [{"name", "due_ms", "retries"}],
  //  "sockets": [{"id", "tags", "attachment"}], "recent_events": [{"at_ms", "kind", "what",
  //  "status", "duration_ms", "batch"}] newest first (null if RuntimeOptions::recent_events
  //  is 0), "now_ms": the runtime's clock}. not_found if it has no database.
  Result<nlohmann::json> inspect(std::string_view binding, std::string_view name) const;
  // {"columns", "rows", "truncated"}: one statement that only reads (anything else is
  // invalid_argument and changes nothing), at most `max_rows` rows (<= admin_max_rows).
  Result<nlohmann::json> query(std::string_view binding, std::string_view name,
                               std::string_view sql, std::size_t max_rows) const;
  // The bytes of a consistent SQLite file of the actor's database (SQLite's online backup,
  // taken between two of its events).
  Result<std::string> export_database(std::string_view binding, std::string_view name) const;
  // Makes the actor, which must have no tables (new, or deleted), a copy of SQLite file
  // `bytes` (checked first: invalid_argument for anything but an intact database; conflict
  // if the actor has data). Its alarms are scheduled.
  Result<nlohmann::json> import_database(std::string_view binding, std::string_view name,
                                         std::string_view bytes) const;
  // Deletes the actor: its sockets closed (limits::deleted_close_code), its database files
  // and alarms gone, its name forgotten. {"deleted": had a database, "sockets_closed": n}.
  Result<nlohmann::json> remove(std::string_view binding, std::string_view name) const;
  // The actors with the most events, the slowest p99 and the most errors (status >= 500) in
  // the last `seconds` (10-300, rounded up to limits::activity_slot): {"seconds", "busiest",
  // "slowest", "failing"}, each at most `limit` (1-admin_max_top) of {"binding", "name",
  // "events", "errors", "p50_ms", "p99_ms"} (latencies on the actor's thread, within a factor
  // of 1.42 above). Empty lists if RuntimeOptions::recent_events is 0. Never blocks on actors.
  Result<nlohmann::json> top(std::chrono::seconds seconds, std::size_t limit) const;
  // Brings the actor's tables back to what they were at `at_ms` (Unix milliseconds) from its
  // history of changes (RuntimeOptions::history_retention), in one transaction, made durable
  // before the answer; the instance is made again on its next event. Alarms and sockets are
  // not part of it. The restore is itself recorded: it can be undone by restoring to a moment
  // before it. {"restored_to_ms", "restored_to", "changes_undone"}; conflict if the history
  // does not reach back that far (a schema change, an import, pruning or a time with history
  // off cut it) or a change does not undo; invalid_argument for a time in the future;
  // not_found if the actor has no database.
  Result<nlohmann::json> restore(std::string_view binding, std::string_view name, std::int64_t at_ms) const;
  // Evicts the instance now (after the events sent before). False if it was not live.
  Result<bool> evict(std::string_view binding, std::string_view name) const;
  // Copies every actor's database (online backup, one actor at a time per worker) and the
  // runtime's indexes into `dir`, which must be absent or empty, with a manifest.json; an
  // acknowledged write made before the call is in the copy. {"dir", "actors", "bytes",
  // "seconds"}.
  Result<nlohmann::json> backup(const std::filesystem::path& dir) const;

 private:
  Runtime& runtime_;
};

// A moment as Unix milliseconds, from RFC 3339 ("2026-12-02T10:15:00Z", with optional
// fractional seconds and a Z or +hh:mm offset) or a plain number of milliseconds.
// invalid_argument saying what was expected otherwise.
Result<std::int64_t> parse_moment(std::string_view text);
// `ms` (Unix milliseconds) as RFC 3339 in UTC: 2026-12-02T10:15:00.000Z.
std::string format_moment(std::int64_t ms);

// Makes `data_dir` (absent or empty) a copy of backup `backup`, checking the manifest and
// every database (PRAGMA integrity_check) first; nothing is written if a check fails. A
// runtime started on `data_dir` then serves every actor as it was. {"actors", "bytes", "files"}.
// With `at_ms`, every actor is then brought back to that moment from its history (as
// Admin::restore), and the answer adds "restored_to_ms"; if one cannot be (its history does
// not reach back that far), nothing is left in `data_dir` and the error names each such actor.
Result<nlohmann::json> restore_backup(const std::filesystem::path& backup,
                                      const std::filesystem::path& data_dir,
                                      std::optional<std::int64_t> at_ms = std::nullopt);

}  // namespace cairn
