// The SQL surface: exec with bound parameters, cursors, savepoints, and the authorizer that
// keeps user SQL out of the runtime's transaction control and `_cairn_` tables.
#include "cairn/sql.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "cairn/limits.hpp"

namespace cairn {
namespace {

// Pragmas a user may run: they only read. Those marked take a table or index name argument.
struct AllowedPragma {
  const char* name;
  bool takes_argument;
};
constexpr std::array<AllowedPragma, 14> allowed_pragmas{{
    {"table_list", true},       {"table_info", true},      {"table_xinfo", true},
    {"index_list", true},       {"index_info", true},      {"index_xinfo", true},
    {"foreign_key_list", true}, {"foreign_key_check", true}, {"integrity_check", true},
    {"quick_check", true},      {"page_count", false},     {"page_size", false},
    {"freelist_count", false},  {"data_version", false},
}};

bool is_runtime_table(const char* name) {
  return name != nullptr && ::strncasecmp(name, "_cairn_", 7) == 0;
}

SqlValue column_value(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER: return std::int64_t{sqlite3_column_int64(stmt, i)};
    case SQLITE_FLOAT: return sqlite3_column_double(stmt, i);
    case SQLITE_TEXT: {
      auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
    }
    case SQLITE_BLOB: {
      auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, i));
      return Blob(data, data + sqlite3_column_bytes(stmt, i));
    }
    default: return nullptr;
  }
}

nlohmann::json to_json(const SqlValue& v) {
  return std::visit(
      [](const auto& x) -> nlohmann::json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          return nullptr;
        } else {
          return x;
        }
      },
      v);
}

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

// A cached statement goes back to the cache reset and unbound, however exec() left it.
struct Rewind {
  sqlite3_stmt* stmt = nullptr;
  ~Rewind() {
    if (!stmt) return;
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

// Marks the runtime's own statement for the authorizer, restoring the previous state (the
// host's deferred BEGIN may run inside another internal statement).
struct InternalScope {
  bool& flag;
  bool before;
  explicit InternalScope(bool& f) : flag(f), before(f) { flag = true; }
  ~InternalScope() { flag = before; }
};

// Statements kept per connection and kind; past this the cache starts over.
constexpr std::size_t max_cached_statements = 128;

}  // namespace

const SqlValue& Row::operator[](std::string_view column) const& {
  for (std::size_t i = 0; i < names_->size(); ++i) {
    if ((*names_)[i] == column) return values_[i];
  }
  throw std::out_of_range("no column '" + std::string(column) + "' in this row");
}

nlohmann::json Row::to_json() const {
  nlohmann::json object = nlohmann::json::object();
  for (std::size_t i = 0; i < names_->size(); ++i) object[(*names_)[i]] = cairn::to_json(values_[i]);
  return object;
}

nlohmann::json Cursor::to_array() const {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& row : rows_) array.push_back(row.to_json());
  return array;
}

const Row& Cursor::one() const& {
  if (rows_.size() != 1) {
    throw std::logic_error("one() expected exactly one row, the query returned " +
                           std::to_string(rows_.size()));
  }
  return rows_.front();
}

std::vector<std::vector<SqlValue>> Cursor::raw() const {
  std::vector<std::vector<SqlValue>> out;
  out.reserve(rows_.size());
  for (const auto& row : rows_) out.push_back(row.values());
  return out;
}

const std::vector<std::string>& Cursor::column_names() const {
  static const std::vector<std::string> none;
  return names_ ? *names_ : none;
}

int Sql::authorize(void* self_ptr, int action, const char* a, const char* b, const char*,
                   const char*) {
  auto* self = static_cast<Sql*>(self_ptr);
  if (self->internal_) return SQLITE_OK;
  auto deny = [self](std::string why) {
    self->denial_ = std::move(why);
    return SQLITE_DENY;
  };
  switch (action) {
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return deny(
          "BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE are not allowed: each event is "
          "one transaction; use transaction_sync() for a nested atomic unit");
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return deny("ATTACH and DETACH are not allowed: an actor has exactly one database");
    case SQLITE_PRAGMA: {
      for (const auto& p : allowed_pragmas) {
        if (::strcasecmp(a, p.name) == 0 && (b == nullptr || p.takes_argument)) return SQLITE_OK;
      }
      return deny("PRAGMA " + std::string(a) + (b ? " with a value" : "") +
                  " is not allowed: only read-only pragmas such as table_list may run");
    }
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_READ:
      if (is_runtime_table(a)) {
        return deny("table " + std::string(a) + " belongs to the runtime (names starting _cairn_)");
      }
      return SQLITE_OK;
    case SQLITE_ALTER_TABLE:
      // The table is the second argument (the first is the database). The new name of a
      // RENAME is not given to the authorizer: exec() checks the schema after the statement.
      if (is_runtime_table(b)) {
        return deny("table " + std::string(b) + " belongs to the runtime (names starting _cairn_)");
      }
      self->altering_ = true;
      return SQLITE_OK;
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      if (is_runtime_table(a) || is_runtime_table(b)) {
        return deny("table " + std::string(b ? b : a) +
                    " belongs to the runtime (names starting _cairn_)");
      }
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}

void Sql::install_authorizer() { sqlite3_set_authorizer(db_, &Sql::authorize, this); }

// Every this many virtual machine steps the deadline is checked (a clock read: ~20 ns).
constexpr int progress_steps = 4096;

void Sql::install_progress_handler() {
  sqlite3_progress_handler(db_, budget_.count() > 0 ? progress_steps : 0,
                           budget_.count() > 0 ? &Sql::progress : nullptr, this);
}

int Sql::progress(void* self_ptr) {
  auto* self = static_cast<Sql*>(self_ptr);
  if (std::chrono::steady_clock::now() < self->deadline_) return 0;
  self->over_budget_ = true;
  return 1;
}

void Sql::set_deadline(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds budget) {
  bool was = budget_.count() > 0;
  deadline_ = deadline;
  budget_ = budget;
  over_budget_ = false;
  if (was != (budget.count() > 0)) install_progress_handler();
}

bool Sql::check_transaction() noexcept {
  if (in_transaction_ && sqlite3_get_autocommit(db_)) transaction_lost_ = true;
  return transaction_lost_;
}

void Sql::throw_lost(std::string_view sql) {
  throw SqlError(SQLITE_ABORT_ROLLBACK,
                 "SQLite rolled back the event's transaction (INSERT OR ROLLBACK, RAISE(ROLLBACK) "
                 "or a storage error did): no statement may run until the event ends, and the "
                 "event fails",
                 std::string(sql.substr(0, 200)));
}

void Sql::throw_error(int rc, std::string_view sql) {
  std::string message = sqlite3_errmsg(db_);
  if (check_transaction()) {
    message += " (and SQLite rolled back the event's transaction: the event fails)";
  }
  if ((rc & 0xff) == SQLITE_AUTH && !denial_.empty()) message = denial_;
  if ((rc & 0xff) == SQLITE_INTERRUPT && over_budget_) {
    message = "the event ran over its budget of " + std::to_string(budget_.count()) +
              " ms (RuntimeOptions::event_budget, --event-budget): its SQL was interrupted";
  }
  if ((rc & 0xff) == SQLITE_TOOBIG) {
    message += " (limits: a statement of at most " +
               std::to_string(limits::max_sql_statement_bytes) + " bytes, a value of at most " +
               std::to_string(limits::max_sql_value_bytes) + " bytes)";
  }
  denial_.clear();
  throw SqlError(rc, message, std::string(sql));
}

Sql::~Sql() { clear_cache(); }

void Sql::clear_cache() {
  for (auto& cache : cache_) {
    for (auto& [text, stmt] : cache) sqlite3_finalize(stmt);
    cache.clear();
  }
}

void Sql::open_pending() {
  // Both flags go first: the statements below come back through exec().
  bool begin = std::exchange(begin_pending_, false);
  bool savepoint = std::exchange(savepoint_pending_, false);
  if (begin) {
    run_internal("BEGIN");
    in_transaction_ = true;
  }
  if (savepoint) {
    run_internal("SAVEPOINT cairn_event");
    savepoint_open_ = true;
  }
}

void Sql::run_internal(const char* sql) {
  InternalScope internal(internal_);
  exec(sql, std::vector<SqlValue>{});
}

Cursor Sql::exec_internal(std::string_view sql, const std::vector<SqlValue>& params) {
  InternalScope internal(internal_);
  return exec(sql, params);
}

Cursor Sql::exec(std::string_view sql, const std::vector<SqlValue>& params) {
  // Nothing runs in autocommit after SQLite ended the host's transaction: it would be durable
  // at once, outside the output gate, while the rest of the event's work is gone.
  if (transaction_lost_) throw_lost(sql);
  if (over_budget_ && !internal_) {
    throw SqlError(SQLITE_INTERRUPT,
                   "the event ran over its budget of " + std::to_string(budget_.count()) +
                       " ms (RuntimeOptions::event_budget, --event-budget): no more SQL may run",
                   std::string(sql.substr(0, 200)));
  }
  if (begin_pending_ || savepoint_pending_) open_pending();
  if (sql.size() > static_cast<std::size_t>(limits::max_sql_statement_bytes)) {
    throw SqlError(SQLITE_TOOBIG,
                   "a SQL statement may be at most " +
                       std::to_string(limits::max_sql_statement_bytes) + " bytes",
                   std::string(sql.substr(0, 200)));
  }
  std::shared_ptr<const std::vector<std::string>> last_names;
  std::vector<Row> last_rows;
  const char* next = sql.data();
  const char* end = sql.data() + sql.size();
  std::int64_t rows_read = 0;
  std::int64_t rows_written = 0;
  bool bound = false;
  auto& cache = cache_[internal_ ? 1 : 0];
  while (next < end) {
    Statement s;  // a statement that is not cached is finalized when done
    Rewind rewind;
    bool alter = false;  // the user's ALTER TABLE: checked after it runs
    sqlite3_stmt* stmt = nullptr;
    std::string_view text;
    int rc = SQLITE_OK;
    // A text that is one whole statement is prepared once per connection and kept.
    auto hit = next == sql.data() ? cache.find(sql) : cache.end();
    if (hit != cache.end()) {
      stmt = rewind.stmt = hit->second;
      text = sql;
      next = end;
    } else {
      const char* tail = nullptr;
      altering_ = false;
      rc = sqlite3_prepare_v2(db_, next, static_cast<int>(end - next), &stmt, &tail);
      text = std::string_view(next, static_cast<std::size_t>(tail - next));
      if (rc != SQLITE_OK) throw_error(sqlite3_extended_errcode(db_), text);
      alter = std::exchange(altering_, false) && !internal_;
      // An ALTER is never kept: a kept statement is not authorized again when it runs.
      if (stmt && next == sql.data() && tail == end && !alter) {
        if (cache.size() >= max_cached_statements) clear_cache();
        cache_[internal_ ? 1 : 0].emplace(std::string(sql), stmt);
        rewind.stmt = stmt;
      } else {
        s.stmt = stmt;
      }
      next = tail;
    }
    if (stmt == nullptr) continue;  // only white space or a comment
    int wanted = sqlite3_bind_parameter_count(stmt);
    if (wanted > 0) {
      if (bound || static_cast<std::size_t>(wanted) != params.size()) {
        throw SqlError(SQLITE_RANGE,
                       "the statement has " + std::to_string(wanted) + " parameters but " +
                           std::to_string(bound ? 0 : params.size()) +
                           " values were bound (values bind to one statement only)",
                       std::string(text));
      }
      for (int i = 0; i < wanted; ++i) {
        const SqlValue& v = params[static_cast<std::size_t>(i)];
        int brc = std::visit(
            [&](const auto& x) {
              using T = std::decay_t<decltype(x)>;
              if constexpr (std::is_same_v<T, std::nullptr_t>) {
                return sqlite3_bind_null(stmt, i + 1);
              } else if constexpr (std::is_same_v<T, std::int64_t>) {
                return sqlite3_bind_int64(stmt, i + 1, x);
              } else if constexpr (std::is_same_v<T, double>) {
                return sqlite3_bind_double(stmt, i + 1, x);
              } else if constexpr (std::is_same_v<T, std::string>) {
                return sqlite3_bind_text64(stmt, i + 1, x.data(), x.size(), SQLITE_TRANSIENT,
                                           SQLITE_UTF8);
              } else {
                return sqlite3_bind_blob64(stmt, i + 1, x.data(), x.size(), SQLITE_TRANSIENT);
              }
            },
            v);
        if (brc != SQLITE_OK) throw_error(brc, text);
      }
      bound = true;
    }
    std::shared_ptr<std::vector<std::string>> names;
    int columns = 0;
    std::vector<Row> rows;
    if (alter) {
      run_guarded_alter(stmt, text);
      continue;
    }
    for (;;) {
      rc = sqlite3_step(stmt);
      if (!names) {
        // After the first step: a kept statement re-prepared for a changed schema has its
        // new columns only from then on.
        names = std::make_shared<std::vector<std::string>>();
        columns = sqlite3_column_count(stmt);
        for (int i = 0; i < columns; ++i) names->emplace_back(sqlite3_column_name(stmt, i));
      }
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) throw_error(sqlite3_extended_errcode(db_), text);
      std::vector<SqlValue> values;
      values.reserve(static_cast<std::size_t>(columns));
      for (int i = 0; i < columns; ++i) values.push_back(column_value(stmt, i));
      rows.emplace_back(names, std::move(values));
    }
    rows_read += static_cast<std::int64_t>(rows.size()) +
                 sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0);
    if (!sqlite3_stmt_readonly(stmt)) rows_written += sqlite3_changes64(db_);
    if (check_transaction()) throw_lost(text);
    last_names = std::move(names);
    last_rows = std::move(rows);
  }
  if (!params.empty() && !bound) {
    throw SqlError(SQLITE_RANGE,
                   std::to_string(params.size()) + " values were bound but no statement takes any",
                   std::string(sql.substr(0, 200)));
  }
  return Cursor(std::move(last_names), std::move(last_rows), rows_read, rows_written);
}

void Sql::run_guarded_alter(sqlite3_stmt* stmt, std::string_view text) {
  // The authorizer is not told the new name of ALTER TABLE ... RENAME TO: the statement runs
  // inside a savepoint of its own and is undone if it left a user table named like the
  // runtime's. DDL is transactional in SQLite, so the undo is complete.
  auto runtime_names = [this] {
    std::vector<std::string> names;
    // The temp schema too: a temp table named like the runtime's would shadow it.
    for (const auto& row : exec_internal(
             "SELECT name FROM sqlite_schema WHERE name LIKE '\\_cairn\\_%' ESCAPE '\\' UNION ALL "
             "SELECT name FROM sqlite_temp_schema WHERE name LIKE '\\_cairn\\_%' ESCAPE '\\' ORDER BY name",
             {})) {
      names.push_back(std::get<std::string>(row["name"]));
    }
    return names;
  };
  auto before = runtime_names();
  run_internal("SAVEPOINT cairn_alter");
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    int code = sqlite3_extended_errcode(db_);
    if (!check_transaction()) {
      run_internal("ROLLBACK TO cairn_alter");
      run_internal("RELEASE cairn_alter");
    }
    throw_error(code, text);
  }
  auto after = runtime_names();
  if (after != before) {
    run_internal("ROLLBACK TO cairn_alter");
    run_internal("RELEASE cairn_alter");
    std::string taken;
    for (const auto& name : after) {
      if (std::find(before.begin(), before.end(), name) == before.end()) taken = name;
    }
    throw SqlError(SQLITE_AUTH, "table " + taken + " belongs to the runtime (names starting _cairn_)",
                   std::string(text));
  }
  run_internal("RELEASE cairn_alter");
}

void Sql::transaction_sync(const std::function<void()>& fn) {
  std::string name = "cairn_sync_" + std::to_string(savepoint_depth_);
  run_internal(("SAVEPOINT " + name).c_str());
  ++savepoint_depth_;
  try {
    fn();
  } catch (...) {
    --savepoint_depth_;
    // If SQLite ended the whole transaction, the savepoint is gone with it: the event fails.
    if (!check_transaction()) {
      run_internal(("ROLLBACK TO " + name).c_str());
      run_internal(("RELEASE " + name).c_str());
    }
    throw;
  }
  --savepoint_depth_;
  run_internal(("RELEASE " + name).c_str());
}

void Migration::run_statements(Sql& db, const std::string& sql) { db.exec(sql); }

SchemaTooNew::SchemaTooNew(std::int64_t database, std::int64_t code)
    : std::runtime_error("the database's schema is at version " + std::to_string(database) +
                         ", newer than the " + std::to_string(code) +
                         " migration steps this code knows: it was written by a newer version of the class; "
                         "deploy that version (or a later one) again, or restore the data from before it"),
      database_(database),
      code_(code) {}

std::int64_t Sql::schema_version() {
  auto table = exec_internal("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_cairn_migrations'", {});
  if (table.size() == 0) return 0;
  auto version = exec_internal("SELECT coalesce(max(version), 0) AS v FROM _cairn_migrations", {}).one()["v"];
  return std::get<std::int64_t>(version);
}

std::int64_t Sql::migrate(const std::vector<Migration>& steps) {
  auto known = static_cast<std::int64_t>(steps.size());
  auto at = schema_version();
  if (at > known) throw SchemaTooNew(at, known);
  if (at == known) return at;
  // All the missing steps or none: a failing step leaves the database at the version it had.
  transaction_sync([&] {
    exec_internal(
        "CREATE TABLE IF NOT EXISTS _cairn_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_ms INTEGER NOT NULL)",
        {});
    for (auto version = at + 1; version <= known; ++version) {
      const auto& step = steps[static_cast<std::size_t>(version - 1)];
      auto failed = [&](const char* what) {
        return "migration step " + std::to_string(version) + " ('" + step.name + "') failed: " + what;
      };
      try {
        step.apply(*this);
      } catch (const SqlError& e) {
        // Still an SqlError: a full disk or an I/O error is answered as one (507, 503).
        throw SqlError(e.code(), failed(e.what()), e.sql());
      } catch (const std::exception& e) {
        throw std::runtime_error(failed(e.what()));
      }
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count();
      exec_internal("INSERT INTO _cairn_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
                    {version, step.name, std::int64_t{now}});
    }
  });
  // A step that only changed rows is no DDL, yet a restore must not undo it behind the
  // version's back: the history is cut at this commit as for a schema change.
  migrated_ = true;
  return at;
}

std::int64_t Sql::database_size() {
  auto pages = exec("PRAGMA page_count").one()[0];
  auto size = exec("PRAGMA page_size").one()[0];
  return std::get<std::int64_t>(pages) * std::get<std::int64_t>(size);
}

}  // namespace cairn
