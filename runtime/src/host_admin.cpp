// Host: the admin API's operations on one actor's database, and the bookkeeping of its
// files (the metrics' byte totals; an empty database forgotten at eviction).
#include "host.hpp"
#include "database_vfs.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>

#include <caf/all.hpp>

#include "cairn/limits.hpp"
#include "host_support.hpp"
#include "runtime_core.hpp"

namespace cairn {
using namespace host_support;

void Host::run_admin(AdminEvent& event) {
  Result<nlohmann::json> result = fail(Code::internal, "no result");
  try {
    result = admin_operation(event);
  } catch (const SqlError& e) {
    int primary = e.code() & 0xff;
    if (is_storage_failure(e) && primary != SQLITE_READONLY) {
      result = storage_error(e, "the actor's storage failed");
    } else if (primary == SQLITE_INTERRUPT) {
      result = fail(Code::timeout, e.what());
    } else {
      result = fail(Code::invalid_argument, e.what());
    }
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: admin operation failed: {}", id_.binding(), id_.hex(), e.what());
    result = fail(Code::internal, e.what());
  } catch (...) {
    result = fail(Code::internal, "unknown exception (not a std::exception)");
  }
  if (event.done) event.done->set_value(std::move(result));
}

namespace {

// The soonest alarm in SQLite file `file` (an export about to be imported), if it has any.
std::optional<std::int64_t> soonest_alarm_in(const std::string& file) {
  sqlite3* db = nullptr;
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(nullptr, sqlite3_close);
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  guard.reset(db);
  if (rc != SQLITE_OK) return std::nullopt;  // the import itself then says what is wrong
  sqlite3_stmt* stmt = nullptr;
  std::optional<std::int64_t> soonest;
  if (sqlite3_prepare_v2(db, "SELECT min(due) FROM _cairn_alarms", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
    soonest = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return soonest;
}

}  // namespace

Result<nlohmann::json> Host::admin_operation(AdminEvent& event) {
  // The operator sees (and copies) what callers were told happened: the open batch first,
  // made durable (a copy must not hold a write that a power loss could still take back).
  if (in_batch_) commit_batch();
  if (!flush_durable()) return fail(Code::unavailable, "the actor's storage failed: its last writes could not be made durable");
  if (event.op == AdminEvent::Op::remove) return remove_everything();
  open_database();
  // What a previous process left unsynced is synced before the operator sees or copies it.
  if (!flush_durable()) return fail(Code::unavailable, "the actor's storage failed: its data could not be made durable");
  // An operator's write (import, restore) is synced before the answer says it happened.
  auto make_durable = [this](const char* what) -> Result<void> {
    if (std::string error; !sync_wal(db_->vfs(), db_->wal_file(), error)) {
      spdlog::error("actor {} {}: the {} could not be made durable: {}", id_.binding(), id_.hex(), what, error);
      abort_batch(Error{Code::unavailable, std::string("the ") + what + " could not be made durable"}, true);
      return fail(Code::unavailable, std::string("the ") + what + " could not be made durable: the actor's storage failed");
    }
    return {};
  };
  switch (event.op) {
    case AdminEvent::Op::inspect:
      return inspect();
    case AdminEvent::Op::query:
      return db_->read_only_query(event.text, event.max_rows, limits::admin_query_budget);
    case AdminEvent::Op::copy_to: {
      db_->copy_to(event.text);
      auto soonest = soonest_alarm();
      return nlohmann::json{{"bytes", std::filesystem::file_size(event.text)},
                            {"soonest_alarm", soonest ? nlohmann::json(*soonest) : nlohmann::json()}};
    }
    case AdminEvent::Op::import: {
      if (!db_->is_empty()) {
        return fail(Code::conflict, "actor " + id_.binding() + " '" + id_.name() +
                                        "' already has data: delete it first, or import into a new name");
      }
      reset_instance();
      // The imported alarms go into the index like a commit's: the soonest before the import
      // lands (read from the file), so the index is never late for it.
      core_->alarm_index().before_commit(id_, soonest_alarm_in(event.text));
      alarms_dirty_ = true;  // until the index has heard the truth below
      db_->import_from(event.text);
      identity_known_ = false;
      // The copy may name the actor it was exported from: this one's name replaces it.
      db_->begin();
      try {
        record_identity();
        db_->history_cut("imported");
        db_->commit();
        identity_known_ = true;
      } catch (...) {
        db_->rollback();
        throw;
      }
      // The backup's commit does not wait for the disk (nor pass the WAL hook): synced here,
      // before the answer says it happened.
      if (auto failed = make_durable("import"); !failed) return failed.error();
      auto soonest = soonest_alarm();
      core_->alarms_committed(id_, soonest);
      alarms_dirty_ = false;
      auto tables = db_->internal("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name <> '_cairn_actor'").one()["n"];
      return nlohmann::json{{"imported", true},
                            {"bytes", db_->bytes_on_disk()},
                            {"tables", std::get<std::int64_t>(tables)}};
    }
    case AdminEvent::Op::restore: {
      // The instance is made again on the next event: what it holds in memory came from the
      // data being replaced.
      reset_instance();
      db_->begin();
      Result<nlohmann::json> restored = fail(Code::internal, "no restore ran");
      try {
        restored = db_->restore_to(std::stoll(event.text));
        if (!restored) {
          db_->rollback();
          return restored;
        }
        db_->commit();
      } catch (...) {
        db_->rollback();
        throw;
      }
      if (auto failed = make_durable("restore"); !failed) return failed.error();
      return restored;
    }
    case AdminEvent::Op::remove:
      break;
  }
  return fail(Code::internal, "unknown admin operation");
}

nlohmann::json Host::inspect() {
  nlohmann::json sockets = nlohmann::json::array();
  for (const auto& entry : core_->sockets.list(id_.hex(), {})) {
    nlohmann::json attachment;
    if (!entry->attachment.empty()) {
      attachment = nlohmann::json::parse(entry->attachment, nullptr, false);
    }
    sockets.push_back({{"id", entry->id}, {"tags", entry->tags}, {"attachment", attachment}});
  }
  nlohmann::json alarms = nlohmann::json::array();
  if (alarm_table_exists()) {
    for (const auto& row : db_->internal("SELECT name, due, retries FROM _cairn_alarms ORDER BY due, name")) {
      auto due = from_ticks(std::get<std::int64_t>(row["due"]));
      alarms.push_back({{"name", std::get<std::string>(row["name"])},
                        {"due_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                       due.time_since_epoch()).count()},
                        {"retries", std::get<std::int64_t>(row["retries"])}});
    }
  }
  // The schema's history as Sql::migrate recorded it (none if the class does not use it).
  nlohmann::json migrations = nlohmann::json::array();
  std::int64_t schema_version = 0;
  if (db_->internal("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_cairn_migrations'").size() > 0) {
    for (const auto& row : db_->internal("SELECT version, name, applied_ms FROM _cairn_migrations ORDER BY version")) {
      schema_version = std::get<std::int64_t>(row["version"]);
      migrations.push_back({{"version", schema_version},
                            {"name", std::get<std::string>(row["name"])},
                            {"applied_ms", std::get<std::int64_t>(row["applied_ms"])}});
    }
  }
  nlohmann::json tables = nlohmann::json::array();
  auto schema = db_->internal(
      "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE "
      "'sqlite\\_%' ESCAPE '\\' ORDER BY name");
  for (const auto& row : schema) {
    const auto& name = std::get<std::string>(row["name"]);
    const auto& type = std::get<std::string>(row["type"]);
    nlohmann::json table{{"name", name}, {"type", type}};
    if (type == "table") {
      std::string quoted = "\"";
      for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      quoted += '"';
      table["rows"] = std::get<std::int64_t>(db_->internal("SELECT count(*) AS n FROM " + quoted).one()["n"]);
    }
    tables.push_back(std::move(table));
  }
  return {{"binding", id_.binding()},
          {"name", id_.name()},
          {"id", id_.hex()},
          {"instance", instance_ != nullptr},
          {"sockets", std::move(sockets)},
          {"alarms", std::move(alarms)},
          {"tables", std::move(tables)},
          {"schema_version", schema_version},
          {"history", db_->history_facts()},
          {"migrations", std::move(migrations)},
          {"database_bytes", db_->bytes_on_disk()},
          // Newest first; kept across evictions (activity.hpp). Null if turned off.
          {"recent_events", core_->activity().enabled() ? recent_.json() : nlohmann::json()},
          {"now_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                         core_->options.clock->now().time_since_epoch()).count()}};
}

nlohmann::json Host::remove_everything() {
  // A deleted actor's history goes with it: a new one of the same name starts with none.
  recent_ = detail::EventRing(core_->activity().ring_capacity());
  batch_first_event_ = 0;
  batch_activity_ = {};
  core_->activity().forget(id_);
  std::size_t closed = 0;
  for (const auto& entry : core_->sockets.list(id_.hex(), {})) {
    entry->sink->close(limits::deleted_close_code, "the actor was deleted");
    core_->sockets.remove(entry->id);
    ++closed;
  }
  core_->sockets.set_rule(id_, nullptr);
  reset_instance();
  retire_gate(false);
  db_.reset();
  alarms_dirty_ = false;
  auto path = core_->database_path(id_);
  std::error_code ec;
  bool existed = std::filesystem::exists(path, ec);
  if (std::string failed; !remove_database_files(path, ec, &failed)) {
    throw SqlError(SQLITE_IOERR, "cannot delete " + failed + ": " + ec.message(), "");
  }
  sync_path(path.parent_path());
  // A replicated shard: the follower's copy must be gone too before the delete is answered,
  // or a failover would bring the actor back.
  if (std::string error; !detail::sync_replica_of(path, error)) {
    throw SqlError(SQLITE_IOERR, "cannot delete the follower's copy of " + path.string() + ": " + error, "");
  }
  report_bytes();
  core_->alarms_committed(id_, std::nullopt);
  core_->alarm_index().flush();
  core_->names().remove(id_);
  return {{"deleted", existed}, {"sockets_closed", closed}};
}

std::int64_t Host::files_bytes() const {
  return static_cast<std::int64_t>(database_bytes(core_->database_file(id_)));
}

void Host::report_bytes() {
  auto now = files_bytes();
  if (now != reported_bytes_) core_->database_bytes_changed(id_.binding(), now - reported_bytes_);
  reported_bytes_ = now;
}

void Host::forget_empty_database() {
  std::error_code ec;
  remove_database_files(core_->database_file(id_), ec);  // a file left is as empty as before
  report_bytes();
  // No directory fsync: if a crash brings the empty file back, it is as empty as before.
  try {
    core_->names().remove(id_);
  } catch (const std::exception& e) {
    // The row stays (the actor is listed with an empty database); nothing is lost.
    spdlog::warn("actor {} {}: cannot forget its name: {}", id_.binding(), id_.hex(), e.what());
  }
}

}  // namespace cairn
