// Each actor's history of committed changes, for restores to a point in time (Database's
// history_* members; database.hpp says what they promise).
//
// Why SQLite's session extension and not the WAL: a WAL's frames are whole pages and are
// checkpointed into the database file (and the file cut) all the time; keeping them for days
// would mean keeping every page image ever written, and restoring would mean replaying a base
// copy plus frames. A session records, per transaction, only the rows that changed (old and
// new values), in a compact changeset that SQLite itself can apply backwards
// (SQLITE_CHANGESETAPPLY_INVERT). Debian's libsqlite3 is built with it. Its limits, which the
// README states: rows of tables without a PRIMARY KEY are not recorded, and schema changes
// (DDL) are not either, so a transaction that changes the schema cuts the history there.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

#include "cairn/admin.hpp"
#include "database.hpp"

namespace cairn {

namespace {

// Tables the history does not record: the runtime's own (alarms, identity, the history
// itself) and SQLite's.
int record_table(void*, const char* table) {
  return (::strncasecmp(table, "_cairn_", 7) == 0 || ::strncasecmp(table, "sqlite_", 7) == 0) ? 0 : 1;
}

std::string iso_time(std::int64_t ms) {
  auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return text;
}

constexpr const char* create_table =
    "CREATE TABLE IF NOT EXISTS _cairn_history (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, "
    "changes BLOB, why TEXT)";

// As sql.cpp's: the runtime's own statements (the changeset's) pass the authorizer.
struct InternalFlag {
  bool& flag;
  bool before;
  explicit InternalFlag(bool& f) : flag(f), before(f) { flag = true; }
  ~InternalFlag() { flag = before; }
  InternalFlag(const InternalFlag&) = delete;
  InternalFlag& operator=(const InternalFlag&) = delete;
};

}  // namespace

std::string format_moment(std::int64_t ms) { return iso_time(ms); }


void Database::enable_history(HistoryOptions options) {
  history_ = std::move(options);
  history_after_commit();  // a session, or (if none can be made) a cut at the first commit
}

void Database::delete_session() noexcept {
  if (session_ != nullptr) sqlite3session_delete(session_);
  session_ = nullptr;
}

void Database::new_session() {
  delete_session();
  if (history_.retention.count() <= 0) return;
  sqlite3_session* session = nullptr;
  InternalFlag internal(sql_.internal_);  // the session reads the tables' shapes itself
  int rc = sqlite3session_create(db_, "main", &session);
  if (rc == SQLITE_OK) {
    sqlite3session_table_filter(session, &record_table, nullptr);
    rc = sqlite3session_attach(session, nullptr);
  }
  if (rc != SQLITE_OK) {
    if (session != nullptr) sqlite3session_delete(session);
    throw SqlError(rc, std::string("cannot record the actor's history: ") + sqlite3_errstr(rc), "");
  }
  session_ = session;
  // The actor's tables' definitions, read again only when SQLite's schema cookie moved.
  if (auto cookie = schema_cookie(); cookie != schema_cookie_) {
    user_schema_ = user_schema();
    schema_cookie_ = cookie;
  }
}

std::string Database::user_schema() {
  // The runtime's own tables (created lazily: alarms, migrations, the history) are not the
  // actor's schema: creating them cuts nothing.
  auto rows = sql_.exec_internal(
      "SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE '\\_cairn\\_%' ESCAPE '\\' "
      "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name",
      {});
  std::string text;
  for (const auto& row : rows) {
    text += std::get<std::string>(row[0]) + ' ' + std::get<std::string>(row[1]) + ' ' + std::get<std::string>(row[2]) + '\n';
  }
  return text;
}

std::int64_t Database::schema_cookie() {
  return std::get<std::int64_t>(sql_.exec_internal("PRAGMA schema_version", {}).one()[0]);
}

bool Database::history_table_exists() {
  if (history_table_ < 0) {
    history_table_ =
        sql_.exec_internal("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_cairn_history'", {}).size() > 0 ? 1 : 0;
  }
  return history_table_ == 1;
}

std::int64_t Database::history_now() {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 (history_.clock ? history_.clock->now() : std::chrono::system_clock::now()).time_since_epoch())
                 .count();
  // Times only go forward in the history, whatever the clock does: "the state at T" is then
  // every commit stamped T or before, in commit order.
  if (history_last_ms_ < 0) {
    history_last_ms_ = history_table_exists()
                           ? std::get<std::int64_t>(
                                 sql_.exec_internal("SELECT coalesce(max(at_ms), 0) FROM _cairn_history", {}).one()[0])
                           : 0;
  }
  return std::max(now, history_last_ms_);
}

void Database::history_record_cut(std::int64_t at_ms, std::string_view why) {
  if (!history_table_exists()) {
    sql_.exec_internal(create_table, {});
    history_table_ = 1;
  }
  sql_.exec_internal("INSERT INTO _cairn_history (at_ms, changes, why) VALUES (?, NULL, ?)", {at_ms, std::string(why)});
  history_last_ms_ = std::max(history_last_ms_, at_ms);
}

void Database::history_cut(std::string_view why) {
  if (history_.retention.count() <= 0 && !history_table_exists()) return;
  history_record_cut(history_now(), why);
  // What came before is unknown from here on: the schema now is the one changes are read
  // against (an import brings its own).
  user_schema_ = user_schema();
  schema_cookie_ = schema_cookie();
}

void Database::history_before_commit() {
  if (!writing()) return;  // nothing changed: nothing to record
  if (history_.retention.count() <= 0) {
    sql_.migrated_ = false;
    // History off: a database that kept one before must not later be "restored" across the
    // changes made meanwhile. Once per opening, at its first write.
    if (!history_gap_marked_) {
      history_gap_marked_ = true;
      if (history_table_exists()) history_record_cut(history_now(), "history was off");
    }
    return;
  }
  auto now = history_now();
  bool started = !history_table_exists();
  // DDL is not recorded by the session: this commit cannot be undone, so the history before
  // it is cut. The cookie moves for any schema change, the runtime's own tables' included.
  bool migrated = std::exchange(sql_.migrated_, false);
  bool schema_changed = migrated || (schema_cookie() != schema_cookie_ && user_schema() != user_schema_);
  if (started) history_record_cut(now, "history started");
  if (std::exchange(history_lost_, false)) history_record_cut(now, "changes went unrecorded");
  if (schema_changed) {
    history_record_cut(now, "the schema changed");
  } else if (session_ == nullptr) {
    if (!started) history_record_cut(now, "changes went unrecorded");
  } else if (!sqlite3session_isempty(session_)) {
    int bytes = 0;
    void* changes = nullptr;
    int rc = SQLITE_OK;
    {
      InternalFlag internal(sql_.internal_);  // it reads the changed rows' values itself
      rc = sqlite3session_changeset(session_, &bytes, &changes);
    }
    std::unique_ptr<void, void (*)(void*)> guard(changes, sqlite3_free);
    if (rc != SQLITE_OK) throw SqlError(rc, std::string("cannot record the actor's history: ") + sqlite3_errstr(rc), "");
    if (bytes > 0) {
      // A transaction larger than the whole budget (or than a value may be) is not kept: the
      // history is cut at it rather than the write refused.
      if (bytes > history_.max_bytes / 2 || bytes > limits::max_sql_value_bytes) {
        history_record_cut(now, "a transaction too large to keep");
      } else {
        auto* data = static_cast<const std::uint8_t*>(changes);
        sql_.exec_internal("INSERT INTO _cairn_history (at_ms, changes) VALUES (?, ?)",
                           {now, Blob(data, data + bytes)});
        history_last_ms_ = now;
        if (history_bytes_ >= 0) history_bytes_ += bytes;
        if (history_oldest_ms_ == 0) history_oldest_ms_ = now;
      }
    }
  }
  prune_history(now);
}

void Database::prune_history(std::int64_t now) {
  if (history_bytes_ < 0) {
    // The oldest change, not cut: a cut older than the retention with nothing before it
    // (the one pruning leaves) is no reason to prune again.
    auto row = sql_.exec_internal(
        "SELECT coalesce(sum(length(changes)), 0), coalesce(min(CASE WHEN changes IS NOT NULL THEN at_ms END), 0) "
        "FROM _cairn_history", {}).one();
    history_bytes_ = std::get<std::int64_t>(row[0]);
    history_oldest_ms_ = std::get<std::int64_t>(row[1]);
  }
  auto horizon = now - std::chrono::duration_cast<std::chrono::milliseconds>(history_.retention).count();
  bool too_old = history_oldest_ms_ > 0 && history_oldest_ms_ < horizon;
  bool too_big = history_bytes_ > history_.max_bytes;
  if (!too_old && !too_big) return;
  // Oldest first, down to the age limit and to 3/4 of the size limit (so that pruning runs
  // once in a while, not at every commit). The earliest time left to restore to is the last
  // one pruned: a cut there says so.
  std::int64_t keep_bytes = too_big ? history_.max_bytes * 3 / 4 : history_bytes_;
  std::int64_t bytes = history_bytes_;
  std::int64_t last_id = 0, last_ms = 0;
  for (const auto& row : sql_.exec_internal("SELECT id, at_ms, coalesce(length(changes), 0) FROM _cairn_history ORDER BY id", {})) {
    auto at = std::get<std::int64_t>(row[1]);
    if (at >= horizon && bytes <= keep_bytes) break;
    last_id = std::get<std::int64_t>(row[0]);
    last_ms = at;
    bytes -= std::get<std::int64_t>(row[2]);
  }
  if (last_id == 0) return;
  sql_.exec_internal("DELETE FROM _cairn_history WHERE id <= ?", {last_id});
  sql_.exec_internal("INSERT INTO _cairn_history (at_ms, changes, why) VALUES (?, NULL, 'older history pruned')", {last_ms});
  // The cut goes first in time order: give it the smallest id left (ids order the undo).
  sql_.exec_internal("UPDATE _cairn_history SET id = ? WHERE id = last_insert_rowid()", {last_id});
  history_bytes_ = bytes;
  history_oldest_ms_ = std::get<std::int64_t>(
      sql_.exec_internal("SELECT coalesce(min(at_ms), 0) FROM _cairn_history WHERE changes IS NOT NULL", {}).one()[0]);
}

void Database::history_after_commit() noexcept {
  if (history_.retention.count() <= 0) return;
  try {
    new_session();
  } catch (const std::exception&) {
    // The commit stands. What the next transactions change goes unrecorded until a session
    // can be made again: the next commit cuts the history there.
    delete_session();
    history_lost_ = true;
  }
}

void Database::forget_history_facts() noexcept {
  history_table_ = -1;
  history_bytes_ = -1;
  history_last_ms_ = -1;
  history_oldest_ms_ = 0;
}

void Database::history_after_rollback() noexcept {
  sql_.migrated_ = false;
  forget_history_facts();
  history_after_commit();  // a fresh session: the rolled-back changes are not the next batch's
}

nlohmann::json Database::history_facts() {
  nlohmann::json facts{{"on", history_.retention.count() > 0},
                       {"retention_seconds", std::chrono::duration_cast<std::chrono::seconds>(history_.retention).count()},
                       {"max_bytes", history_.max_bytes}};
  if (!history_table_exists()) {
    facts["changes"] = 0;
    facts["bytes"] = 0;
    facts["restorable_from_ms"] = nullptr;
    return facts;
  }
  auto row = sql_.exec_internal("SELECT count(changes), coalesce(sum(length(changes)), 0), max(at_ms) FROM _cairn_history", {}).one();
  facts["changes"] = std::get<std::int64_t>(row[0]);
  facts["bytes"] = std::get<std::int64_t>(row[1]);
  auto cut = sql_.exec_internal("SELECT at_ms, why FROM _cairn_history WHERE changes IS NULL ORDER BY id DESC LIMIT 1", {});
  if (cut.size() > 0) {
    auto last = cut.one();
    facts["restorable_from_ms"] = std::get<std::int64_t>(last[0]);
    facts["cut_because"] = std::get<std::string>(last[1]);
  } else {
    facts["restorable_from_ms"] = nullptr;
  }
  if (auto* newest = std::get_if<std::int64_t>(&row[2])) facts["newest_ms"] = *newest;
  return facts;
}

namespace {

struct ApplyState {
  std::string conflict;
};

int on_conflict(void* context, int kind, sqlite3_changeset_iter* iter) {
  auto* state = static_cast<ApplyState*>(context);
  const char* table = nullptr;
  int columns = 0, op = 0, indirect = 0;
  sqlite3changeset_op(iter, &table, &columns, &op, &indirect);
  const char* what = kind == SQLITE_CHANGESET_DATA       ? "a row differs from what the history says"
                     : kind == SQLITE_CHANGESET_NOTFOUND ? "a row the history changed is gone"
                     : kind == SQLITE_CHANGESET_CONFLICT ? "a row the history removed exists again"
                     : kind == SQLITE_CHANGESET_CONSTRAINT ? "a constraint fails"
                     : kind == SQLITE_CHANGESET_FOREIGN_KEY ? "a foreign key fails"
                                                           : "a conflict";
  if (state->conflict.empty()) state->conflict = std::string(what) + (table ? std::string(" (table ") + table + ")" : "");
  return SQLITE_CHANGESET_ABORT;
}

}  // namespace

Result<nlohmann::json> Database::restore_to(std::int64_t at_ms) {
  if (!history_table_exists()) {
    return fail(Code::conflict, "this actor has no history to restore from (the server keeps one with --history-retention)");
  }
  auto now = history_now();
  if (at_ms > now) return fail(Code::invalid_argument, "the time " + iso_time(at_ms) + " is in the future");
  auto later = sql_.exec_internal("SELECT id, at_ms, changes, why FROM _cairn_history WHERE at_ms > ? ORDER BY id DESC", {at_ms});
  // A cut after the moment: the history cannot go back past it.
  std::int64_t cut_ms = -1;
  std::string cut_why;
  for (const auto& row : later) {
    if (std::holds_alternative<std::nullptr_t>(row[2]) && cut_ms < 0) {
      cut_ms = std::get<std::int64_t>(row[1]);
      cut_why = std::get<std::string>(row[3]);
    }
  }
  if (cut_ms >= 0) {
    return fail(Code::conflict, "the history reaches back only to " + iso_time(cut_ms) + " (" + cut_why +
                                    " then): restore to that time or later");
  }
  std::size_t undone = 0;
  {
    InternalFlag internal(sql_.internal_);
    for (const auto& row : later) {
      const auto& changes = std::get<Blob>(row[2]);
      ApplyState state;
      int rc = sqlite3changeset_apply_v2(db_, static_cast<int>(changes.size()), const_cast<std::uint8_t*>(changes.data()),
                                         nullptr, &on_conflict, &state, nullptr, nullptr, SQLITE_CHANGESETAPPLY_INVERT);
      if (rc != SQLITE_OK) {
        auto change_ms = std::get<std::int64_t>(row[1]);
        return fail(Code::conflict, "the history's change of " + iso_time(change_ms) + " does not undo: " +
                                        (state.conflict.empty() ? std::string(sqlite3_errstr(rc)) : state.conflict));
      }
      ++undone;
    }
  }
  return nlohmann::json{{"restored_to_ms", at_ms}, {"restored_to", iso_time(at_ms)}, {"changes_undone", undone}};
}

}  // namespace cairn
