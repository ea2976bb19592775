// The SQL surface an actor sees (Durable Objects' ctx.storage.sql): synchronous statements
// on the actor's own SQLite database, inside the transaction of the current event.
// Used only on the actor's thread, during an event; never stored past it.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace cairn {

using Blob = std::vector<std::uint8_t>;
using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string, Blob>;

// A statement failed, was rejected (BEGIN, ATTACH, a write pragma, a `_cairn_` table), or
// broke a limit. Carries SQLite's extended result code and the SQL text. Thrown; the host
// rolls the event back when it escapes a handler.
class SqlError : public std::runtime_error {
 public:
  SqlError(int code, const std::string& message, std::string sql)
      : std::runtime_error(message), code_(code), sql_(std::move(sql)) {}
  int code() const noexcept { return code_; }
  const std::string& sql() const noexcept { return sql_; }

 private:
  int code_;
  std::string sql_;
};

// One result row. Columns are looked up by name or position.
class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> names, std::vector<SqlValue> values)
      : names_(std::move(names)), values_(std::move(values)) {}
  // Throws std::out_of_range for an unknown index or column. On a temporary row the value
  // is returned by value, so `exec(...).one()["c"]` never dangles.
  const SqlValue& operator[](std::size_t i) const& { return values_.at(i); }
  SqlValue operator[](std::size_t i) && { return std::move(values_.at(i)); }
  const SqlValue& operator[](std::string_view column) const&;
  SqlValue operator[](std::string_view column) && {
    return std::move(const_cast<SqlValue&>(std::as_const(*this)[column]));
  }
  const std::vector<SqlValue>& values() const noexcept { return values_; }
  // {"column": value, ...}; a blob becomes an array of byte values.
  nlohmann::json to_json() const;

 private:
  std::shared_ptr<const std::vector<std::string>> names_;
  std::vector<SqlValue> values_;
};

// The result of exec(): every row of the (last) statement, read when exec() returned.
class Cursor {
 public:
  Cursor() = default;
  Cursor(std::shared_ptr<const std::vector<std::string>> names, std::vector<Row> rows,
         std::int64_t rows_read, std::int64_t rows_written)
      : names_(std::move(names)), rows_(std::move(rows)), rows_read_(rows_read),
        rows_written_(rows_written) {}

  auto begin() const { return rows_.begin(); }
  auto end() const { return rows_.end(); }
  std::size_t size() const noexcept { return rows_.size(); }
  // All rows as a JSON array of objects.
  nlohmann::json to_array() const;
  // The only row; throws std::logic_error unless there is exactly one. A temporary cursor
  // hands its row over by value.
  const Row& one() const&;
  Row one() && { return std::move(const_cast<Row&>(std::as_const(*this).one())); }
  // Rows as arrays of values, without column names.
  std::vector<std::vector<SqlValue>> raw() const;
  const std::vector<std::string>& column_names() const;
  // Rows returned plus rows visited by full table scans (SQLite's FULLSCAN_STEP counter).
  std::int64_t rows_read() const noexcept { return rows_read_; }
  // Rows inserted, updated or deleted.
  std::int64_t rows_written() const noexcept { return rows_written_; }

 private:
  std::shared_ptr<const std::vector<std::string>> names_;
  std::vector<Row> rows_;
  std::int64_t rows_read_ = 0;
  std::int64_t rows_written_ = 0;
};

namespace detail {
inline SqlValue to_sql_value(std::nullptr_t) { return nullptr; }
inline SqlValue to_sql_value(bool v) { return std::int64_t{v ? 1 : 0}; }
// SQLite stores 64-bit signed integers: an unsigned value above INT64_MAX would wrap to a
// negative number, so it is refused (std::out_of_range) instead of stored wrong.
template <class T>
  requires std::is_integral_v<T>
SqlValue to_sql_value(T v) {
  if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
    if (v > static_cast<T>(INT64_MAX)) {
      throw std::out_of_range("a SQL parameter of " + std::to_string(v) +
                              " is above 9223372036854775807, the largest integer SQLite stores");
    }
  }
  return static_cast<std::int64_t>(v);
}
inline SqlValue to_sql_value(double v) { return v; }
inline SqlValue to_sql_value(std::string_view v) { return std::string(v); }
inline SqlValue to_sql_value(const char* v) { return std::string(v); }
inline SqlValue to_sql_value(std::string v) { return v; }
inline SqlValue to_sql_value(Blob v) { return v; }
inline SqlValue to_sql_value(SqlValue v) { return v; }
}  // namespace detail

// The actor's database handle. Not thread-safe: used on the actor's thread only.
class Database;
class Sql;

// One step of a schema's history (Sql::migrate): a name for people, and what it does, as
// SQL statements or as code (which may look before it changes anything).
struct Migration {
  Migration(std::string name_in, std::string sql)
      : name(std::move(name_in)), apply([sql = std::move(sql)](Sql& db) { run_statements(db, sql); }) {}
  Migration(std::string name_in, std::function<void(Sql&)> fn) : name(std::move(name_in)), apply(std::move(fn)) {}
  Migration(const char* name_in, const char* sql) : Migration(std::string(name_in), std::string(sql)) {}
  std::string name;
  std::function<void(Sql&)> apply;

 private:
  static void run_statements(Sql& db, const std::string& sql);
};

// Thrown by Sql::migrate when the database's schema is newer than the steps the code knows
// (the data was written by a newer version of the class): nothing is changed, and the
// instance must not run on it.
class SchemaTooNew : public std::runtime_error {
 public:
  SchemaTooNew(std::int64_t database, std::int64_t code);
  std::int64_t database_version() const noexcept { return database_; }
  std::int64_t code_version() const noexcept { return code_; }

 private:
  std::int64_t database_;
  std::int64_t code_;
};

class Sql {
 public:
  explicit Sql(sqlite3* db) : db_(db) {}
  ~Sql();
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  // Runs one or more `;`-separated statements; `params` bind to the last one's `?`s.
  // Throws SqlError on any failure or rejection.
  Cursor exec(std::string_view sql, const std::vector<SqlValue>& params);
  template <class... Ts>
    requires(!std::is_same_v<std::decay_t<Ts>, std::vector<SqlValue>> && ...)
  Cursor exec(std::string_view sql, Ts&&... params) {
    return exec(sql, std::vector<SqlValue>{detail::to_sql_value(std::forward<Ts>(params))...});
  }

  // Runs fn as a nested atomic unit (a savepoint): all of it or, if it throws, none of it;
  // the exception propagates.
  void transaction_sync(const std::function<void()>& fn);

  // Brings the database's schema to version steps.size(): runs the steps it has not had, in
  // order (step i makes version i + 1), in the current event's transaction, and records each
  // in the runtime's table _cairn_migrations (the admin API shows it). Call it first thing in
  // the constructor: a step that throws undoes what the steps did and propagates (the
  // instance does not start; each event fails until the code or the data is fixed). A
  // database whose version is above steps.size() is refused with SchemaTooNew before anything
  // runs. Returns the version the database was at. Steps, once released, are appended to,
  // never edited: a database is at version N because it ran exactly the first N.
  std::int64_t migrate(const std::vector<Migration>& steps);
  // The schema version migrate() recorded (0 if it never ran on this database).
  std::int64_t schema_version();

  // Bytes the database uses (page_count * page_size).
  std::int64_t database_size();

  // The runtime's: statements run after `deadline` are interrupted (SqlError with
  // SQLITE_INTERRUPT naming `budget`). A zero budget clears it.
  void set_deadline(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds budget);

 private:
  friend class Database;
  // Runs `sql` (no parameters, no rows) past the authorizer: the runtime's own statements.
  void run_internal(const char* sql);
  // exec() past the authorizer: the runtime's own queries (its `_cairn_` tables).
  Cursor exec_internal(std::string_view sql, const std::vector<SqlValue>& params);
  void install_authorizer();
  // The progress handler that enforces the deadline (set_deadline); the admin API's query
  // installs its own and puts this one back.
  void install_progress_handler();
  static int progress(void* self);
  static int authorize(void* self, int action, const char* a, const char* b, const char* db,
                       const char* trigger);
  [[noreturn]] void throw_error(int rc, std::string_view sql);
  // Finalizes every cached statement (before the connection closes).
  void clear_cache();
  // Notes (transaction_lost_) whether SQLite has ended the host's transaction; true if so.
  bool check_transaction() noexcept;
  [[noreturn]] void throw_lost(std::string_view sql);
  // Steps a user's ALTER TABLE, undoing it if it gave a table a runtime name (_cairn_...).
  void run_guarded_alter(sqlite3_stmt* stmt, std::string_view text);
  // Runs the host's deferred BEGIN and SAVEPOINT (see begin_pending_).
  void open_pending();

  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  // Prepared statements by their text, kept for the next exec of the same text. Two caches:
  // a statement prepared for the runtime passed the authorizer as the runtime's, so user SQL
  // of the same text must never reuse it.
  using StatementCache = std::unordered_map<std::string, sqlite3_stmt*, TextHash, std::equal_to<>>;
  StatementCache cache_[2];  // [internal_]

  sqlite3* db_;
  // The host's BEGIN (of a batch) and SAVEPOINT (of an event) wait for the first statement:
  // an event that runs no SQL (a cached read) costs no statement at all, and a batch of
  // such events no transaction.
  bool begin_pending_ = false;
  bool savepoint_pending_ = false;
  bool savepoint_open_ = false;
  // The host's BEGIN ran and its COMMIT or ROLLBACK has not: SQLite must not be in autocommit.
  bool in_transaction_ = false;
  // SQLite ended that transaction by itself (INSERT OR ROLLBACK, RAISE(ROLLBACK), some I/O
  // errors): every later statement fails until the host rolls back, so none runs in autocommit.
  bool transaction_lost_ = false;
  int savepoint_depth_ = 0;
  bool internal_ = false;   // true while the runtime's own statement is prepared
  bool migrated_ = false;   // migrate() ran steps in the open transaction (history: a cut)
  bool altering_ = false;   // the authorizer saw ALTER TABLE in the statement being prepared
  std::string denial_;      // why the authorizer refused the last statement
  std::chrono::steady_clock::time_point deadline_{};  // see set_deadline
  std::chrono::milliseconds budget_{0};
  bool over_budget_ = false;  // the progress handler interrupted a statement
};

}  // namespace cairn
