// Database: one actor's SQLite connection, opened by its host and closed on reset or stop.
// Owns the Sql surface the actor uses and runs the host's own transaction statements.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/clock.hpp"
#include "cairn/result.hpp"
#include "cairn/runtime.hpp"
#include "cairn/sql.hpp"

struct sqlite3;
struct sqlite3_vfs;
struct sqlite3_session;

namespace cairn {

// Opens (creating, with its folder) one of the runtime's own index files under <data>/_cairn/
// in WAL mode with exclusive locking (which also keeps a second process off the data
// directory) and `durability`'s synchronous level. Throws std::runtime_error naming `what`.
sqlite3* open_index_file(const std::filesystem::path& file, Durability durability, const std::string& what);
// fsync a file, or a directory (its new or removed entries are then durable). False on failure.
bool sync_path(const std::filesystem::path& path);
// Makes what was written to WAL file `wal` durable: opens it anew through SQLite's VFS `vfs`
// (the one its database uses, so test VFSs see it) and syncs its data. Any thread: the
// pool's threads run it while the actor's thread writes on. False on failure, with `error`
// saying why. `with_directory`: the WAL's directory is synced too, which makes a new WAL's
// entry (and a new database file's, beside it) durable: the first sync of a WAL the
// database's VFS created must ask for it, as that VFS skipped SQLite's own header and
// directory sync (database_vfs.hpp).
bool sync_wal(sqlite3_vfs* vfs, const std::string& wal, std::string& error, bool with_directory = false);
// Databases checkpoint their WAL once it holds this many pages (1,000 unless set; tests set
// fewer to run checkpoints often). Any thread.
void set_wal_checkpoint_pages(int pages);
// Writes a consistent copy of `from`'s main database to `file` (which must not exist) with
// SQLite's online backup, in rollback-journal mode (a standalone file, readable by read-only
// openers), fsync'd. Throws SqlError.
void copy_database(sqlite3* from, const std::filesystem::path& file);
// Bytes of database `file` and its WAL on disk now (absent files count 0).
std::uint64_t database_bytes(const std::filesystem::path& file);
// Deletes database `file` and its -wal, -shm and -journal files (absent ones are fine), each
// tried; false if one could not be deleted, with `ec` and `failed` (the first such path) set.
bool remove_database_files(const std::filesystem::path& file, std::error_code& ec, std::string* failed = nullptr);
// Unix milliseconds by the system clock (the indexes' and backups' time stamps).
std::int64_t unix_ms();

// How an actor's history of changes is kept (RuntimeOptions::history_retention).
struct HistoryOptions {
  std::chrono::milliseconds retention{0};  // zero: none is kept
  std::int64_t max_bytes = 0;              // the changes kept per actor, at most
  std::shared_ptr<Clock> clock;            // the commits' time stamps (the system clock if null)
};

class Database {
 public:
  // Opens (creating) `path` in WAL mode with exclusive locking, Durable Objects' limits and
  // the authorizer that guards user SQL. Commits do not wait for the disk (synchronous=NORMAL):
  // the host makes them durable with sync_wal() on its storage pool (pipelined durability),
  // while checkpoints keep SQLite's own order (the WAL synced before its frames are copied,
  // the database synced before the WAL is reused or cut). Throws SqlError.
  explicit Database(const std::filesystem::path& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Sql& sql() noexcept { return sql_; }

  // The host's statements: not subject to the user-SQL authorizer. Throw SqlError. BEGIN and
  // SAVEPOINT are deferred to the first statement after them (none if no SQL runs), and
  // COMMIT, RELEASE and ROLLBACK TO act only on what was opened.
  void begin();
  // True if the commit wrote to the WAL (a batch that only read writes nothing). Throws if
  // the commit failed, or if the checkpoint that followed it could not sync (the batch's
  // frames may then be lost: it must not be acknowledged).
  bool commit();
  // True once a commit failed because its checkpoint could not sync: what was committed
  // before may not be durable (the error is told once, to the checkpoint's file handle).
  bool durability_lost() const noexcept { return durability_lost_; }
  // Copies every frame of the WAL into the database file, syncs it, and empties the WAL
  // (a TRUNCATE checkpoint). After a failed sync: the frames it could not write stay readable
  // (Linux marks their pages clean) and no later fsync of the WAL writes them, so commits
  // behind them would be lost with them; written into the database file, they are new pages
  // that its sync does write. Throws SqlError if any frame is left.
  void absorb_wal();
  // True while the open transaction has written (SQLite holds its write lock).
  bool writing() const noexcept;
  void rollback() noexcept;
  void savepoint();
  void release();
  void rollback_to_savepoint();
  // True if SQLite has ended the batch's transaction by itself (INSERT OR ROLLBACK,
  // RAISE(ROLLBACK), some I/O errors): the batch must be aborted; until rollback() every
  // statement throws SqlError (SQLITE_ABORT_ROLLBACK).
  bool transaction_lost() noexcept;

  // The runtime's own queries, past the authorizer. Throw SqlError.
  Cursor internal(std::string_view sql, const std::vector<SqlValue>& params = {}) {
    return sql_.exec_internal(sql, params);
  }
  // Drops every table and view (the user's and the runtime's), inside the open transaction;
  // foreign keys are checked at commit, when nothing is left to violate them.
  void drop_everything();

  // --- The admin API's operations; none may run inside the host's batch. Throw SqlError.
  // Runs one statement that only reads (checked by SQLite and by an authorizer that allows
  // reads and read-only pragmas; the connection is also query_only meanwhile) and returns
  // {"columns": [...], "rows": [[...], ...], "truncated": bool} with at most `max_rows`
  // rows. A statement that writes fails with SQLITE_AUTH or SQLITE_READONLY; one that runs
  // past `budget` is interrupted (SQLITE_INTERRUPT).
  nlohmann::json read_only_query(std::string_view sql, std::size_t max_rows,
                                 std::chrono::milliseconds budget);
  // Writes a consistent copy of the database to `file` (which must not exist) with SQLite's
  // online backup, in rollback-journal mode, fsync'd.
  void copy_to(const std::filesystem::path& file);
  // Replaces the (empty) database's content with that of SQLite file `file`.
  void import_from(const std::filesystem::path& file);
  // True if the database has no table, index, view or trigger.
  bool is_empty();
  // Bytes on disk: the database file and its WAL.
  std::uint64_t bytes_on_disk() const;
  // --- The history of changes, for restores to a point in time (database_history.cpp).
  // Each commit that changed rows of the actor's tables (those with a PRIMARY KEY; not the
  // runtime's _cairn_ tables) keeps its changes, stamped with the clock's time, in
  // _cairn_history, in the same transaction; older than the retention, or beyond max_bytes,
  // they are pruned. What cannot be undone cuts the history: a schema change (DDL is not
  // recorded), an import, a transaction larger than half the budget, a time with history
  // off, and pruning itself; a restore never goes back past a cut. Call once, after opening.
  void enable_history(HistoryOptions options);
  // A cut at now (an import replaced the data outside the history).
  void history_cut(std::string_view why);
  // {"on","retention_seconds","max_bytes","changes","bytes","restorable_from_ms","cut_because",
  //  "newest_ms"}.
  nlohmann::json history_facts();
  // In the open transaction (begin() first): undoes every change committed after `at_ms`,
  // newest first, so the actor's tables are as they were at that moment. conflict if the
  // history does not reach back that far or a change does not undo (then roll back);
  // invalid_argument for a time in the future. The undo is itself a change: recorded, it can
  // be undone in turn. Throws SqlError for I/O.
  Result<nlohmann::json> restore_to(std::int64_t at_ms);

  // The WAL's name as SQLite's VFS knows it, and that VFS (for sync_wal()).
  const std::string& wal_file() const noexcept { return wal_file_; }
  sqlite3_vfs* vfs() const noexcept { return vfs_; }

 private:
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
  void new_session();
  void delete_session() noexcept;
  std::int64_t schema_cookie();
  std::string user_schema();
  bool history_table_exists();
  std::int64_t history_now();
  void history_record_cut(std::int64_t at_ms, std::string_view why);
  void history_before_commit();
  void history_after_commit() noexcept;
  void history_after_rollback() noexcept;
  void prune_history(std::int64_t now);
  // What is cached of _cairn_history is read again (its transaction rolled back, or the
  // tables were dropped or replaced).
  void forget_history_facts() noexcept;

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  Sql sql_;
  std::string wal_file_;
  sqlite3_vfs* vfs_ = nullptr;
  bool wrote_ = false;           // the WAL hook ran since the last commit began
  int checkpoint_failed_ = 0;    // the SQLite code of a checkpoint that failed, 0 if none
  bool durability_lost_ = false;
  HistoryOptions history_;
  sqlite3_session* session_ = nullptr;
  std::int64_t schema_cookie_ = -1;     // PRAGMA schema_version when user_schema_ was read
  std::string user_schema_;             // the actor's tables' definitions then
  std::int64_t history_bytes_ = -1;     // the changes kept (-1: not read yet)
  std::int64_t history_oldest_ms_ = 0;  // the oldest entry's time (0: none)
  std::int64_t history_last_ms_ = -1;   // the newest entry's time (-1: not read yet)
  bool history_gap_marked_ = false;
  bool history_lost_ = false;           // a session could not be made: changes went unrecorded
  int history_table_ = -1;              // _cairn_history exists: 1, does not: 0, not known: -1
};

}  // namespace cairn
