// Database: open with pragmas and limits; the host's transaction statements.
#include "database.hpp"
#include "database_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <strings.h>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>
#include <atomic>
#include <memory>

#include "cairn/limits.hpp"

namespace cairn {
namespace {

// SQLite's own automatic checkpoint threshold (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT), in pages;
// tests lower it to run checkpoints often.
std::atomic<int> wal_checkpoint_pages{1000};

sqlite3* open_connection(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  // Through the shim that lets a new WAL's first commit skip its header sync (database_vfs.hpp).
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           detail::database_vfs_name());
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int code = db ? sqlite3_extended_errcode(db) : rc;
    sqlite3_close(db);
    throw SqlError(code, "cannot open " + path.string() + ": " + message, "");
  }
  sqlite3_extended_result_codes(db, 1);
  return db;
}

// The bytes of an empty database already in WAL mode, as this SQLite library writes it
// (made once per process, in `dir`). Empty if it could not be made.
const std::string& empty_wal_image(const std::filesystem::path& dir) {
  static std::once_flag once;
  static std::string image;
  std::call_once(once, [&] {
    auto scratch = dir / (".cairn-empty-" + std::to_string(::getpid()) + ".sqlite");
    std::error_code ignored;
    std::filesystem::remove(scratch, ignored);
    sqlite3* db = nullptr;
    bool made = sqlite3_open_v2(scratch.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK &&
                sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_close(db);
    if (made) {
      std::ifstream in(scratch, std::ios::binary);
      image.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      // Bytes 18 and 19 are the read and write format versions: 2 means WAL.
      if (image.size() < 100 || image[18] != 2 || image[19] != 2) image.clear();
    }
    remove_database_files(scratch, ignored);
  });
  return image;
}

// A new actor database starts as a copy of the empty WAL-mode image: SQLite would otherwise
// switch the new file to WAL through a rollback journal (a file created and deleted, four
// fsyncs), which made creating a flight cost twice what it does this way. Does nothing if
// the file exists (O_EXCL) or the image could not be made (SQLite then creates the file).
void create_from_image(const std::filesystem::path& path) {
  const auto& image = empty_wal_image(path.parent_path());
  if (image.empty()) return;
  // Through the actor databases' VFS (the one sqlite3_open_v2 then uses, over the default
  // one), so every byte of a database passes one layer: a test VFS sees the file created and
  // written, and a replicated shard's follower gets the image with its sync.
  sqlite3_vfs* vfs = sqlite3_vfs_find(detail::database_vfs_name());
  // As SQLite names it: the absolute path with symbolic links resolved, as its unix VFS's
  // xFullPathname gives it (a test VFS keys its files by name; replication routes by it).
  std::error_code ec;
  auto full = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec).string();
  std::unique_ptr<const char, void (*)(const char*)> name(
      sqlite3_create_filename(full.c_str(), (full + "-journal").c_str(), (full + "-wal").c_str(), 0, nullptr),
      [](const char* p) { sqlite3_free_filename(p); });
  if (vfs == nullptr || name == nullptr) return;
  std::vector<char> storage(static_cast<std::size_t>(vfs->szOsFile));
  auto* file = reinterpret_cast<sqlite3_file*>(storage.data());
  int out_flags = 0;
  int rc = vfs->xOpen(vfs, name.get(), file,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE | SQLITE_OPEN_MAIN_DB, &out_flags);
  if (rc != SQLITE_OK) {
    if (file->pMethods != nullptr) file->pMethods->xClose(file);
    if (std::filesystem::exists(path, ec)) return;  // made meanwhile: SQLite opens it
    throw SqlError(rc, "cannot create " + path.string() + ": " + sqlite3_errstr(rc), "");
  }
  rc = file->pMethods->xWrite(file, image.data(), static_cast<int>(image.size()), 0);
  if (rc == SQLITE_OK) rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
  file->pMethods->xClose(file);
  if (rc != SQLITE_OK) {
    vfs->xDelete(vfs, full.c_str(), 0);
    throw SqlError(rc, "cannot write " + path.string() + ": " + sqlite3_errstr(rc), "");
  }
}

sqlite3* open_database(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) create_from_image(path);
  return open_connection(path);
}

}  // namespace

sqlite3* open_index_file(const std::filesystem::path& file, Durability durability, const std::string& what) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open the " + what + " " + file.string() + ": " + message);
  }
  try {
    Sql sql(db);
    sql.exec("PRAGMA locking_mode=EXCLUSIVE");
    sql.exec("PRAGMA journal_mode=WAL");
    sql.exec(durability == Durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  } catch (const std::exception& e) {
    std::string hint = sqlite3_errcode(db) == SQLITE_BUSY
                           ? " (is another cairn process using this data directory?)"
                           : "";
    sqlite3_close(db);
    throw std::runtime_error("cannot use the " + what + " " + file.string() + ": " + e.what() + hint);
  }
  return db;
}

void set_wal_checkpoint_pages(int pages) { wal_checkpoint_pages.store(pages < 1 ? 1 : pages); }

bool sync_wal(sqlite3_vfs* vfs, const std::string& wal, std::string& error, bool with_directory) {
  // A filename made by SQLite, as xOpen expects of its callers (a VFS may read URI
  // parameters after it).
  std::unique_ptr<const char, void (*)(const char*)> name(
      sqlite3_filename_wal(sqlite3_create_filename(wal.substr(0, wal.size() - 4).c_str(),
                                                   (wal.substr(0, wal.size() - 4) + "-journal").c_str(),
                                                   wal.c_str(), 0, nullptr)),
      [](const char* p) {
        if (p != nullptr) sqlite3_free_filename(sqlite3_filename_database(p));
      });
  if (name == nullptr) {
    error = "out of memory";
    return false;
  }
  std::vector<char> storage(static_cast<std::size_t>(vfs->szOsFile));
  auto* file = reinterpret_cast<sqlite3_file*>(storage.data());
  // With SQLITE_OPEN_CREATE (the file exists: nothing is created) the unix VFS syncs the
  // directory with the file, as it does for a WAL SQLite itself creates.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_WAL | (with_directory ? SQLITE_OPEN_CREATE : 0);
  int out_flags = 0;
  errno = 0;
  int rc = vfs->xOpen(vfs, name.get(), file, flags, &out_flags);
  // Out of descriptors is not a storage failure: wait for some (at most a second) rather than
  // fail every batch waiting for this sync.
  for (int retry = 0; (rc & 0xff) == SQLITE_CANTOPEN && (errno == EMFILE || errno == ENFILE) && retry < 100; ++retry) {
    if (file->pMethods != nullptr) file->pMethods->xClose(file);
    file->pMethods = nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    errno = 0;
    rc = vfs->xOpen(vfs, name.get(), file, flags, &out_flags);
  }
  if (rc == SQLITE_OK) {
    rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
    int saved = errno;
    file->pMethods->xClose(file);
    if (rc != SQLITE_OK) error = std::string("cannot sync ") + wal + ": " + sqlite3_errstr(rc) + " (" + std::strerror(saved) + ")";
  } else {
    int saved = errno;
    if (file->pMethods != nullptr) file->pMethods->xClose(file);
    error = std::string("cannot open ") + wal + " to sync it: " + sqlite3_errstr(rc) + " (" + std::strerror(saved) + ")";
  }
  return rc == SQLITE_OK;
}

bool sync_path(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

void copy_database(sqlite3* from, const std::filesystem::path& file) {
  sqlite3* out = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(out, sqlite3_close);
  if (rc != SQLITE_OK) {
    throw SqlError(rc, "cannot create " + file.string() + ": " + (out ? sqlite3_errmsg(out) : ""), "");
  }
  sqlite3_backup* backup = sqlite3_backup_init(out, "main", from, "main");
  if (backup == nullptr) throw SqlError(sqlite3_extended_errcode(out), sqlite3_errmsg(out), "");
  rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) throw SqlError(rc, std::string("the copy failed: ") + sqlite3_errstr(rc), "");
  if (sqlite3_exec(out, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw SqlError(sqlite3_extended_errcode(out), sqlite3_errmsg(out), "PRAGMA journal_mode=DELETE");
  }
  guard.reset();
  if (!sync_path(file)) throw SqlError(SQLITE_IOERR, "cannot fsync " + file.string() + ": " + std::strerror(errno), "");
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Database::Database(const std::filesystem::path& path)
    : path_(path), db_(open_database(path)), sql_(db_) {
  try {
    // One process owns each file: exclusive locking keeps the WAL index in heap memory
    // (no -shm file), so an open database holds 2 descriptors instead of 3.
    sql_.run_internal("PRAGMA locking_mode=EXCLUSIVE");
    sql_.run_internal("PRAGMA journal_mode=WAL");
    // The WAL file stays when the database closes (eviction). SQLite cuts it to zero bytes
    // then (journal_size_limit is set), so the first commit after a wake reuses the file
    // instead of creating one: no new inode or directory entry. While open, SQLite cuts the
    // WAL to journal_size_limit when it restarts it after a checkpoint. Measured (hibernation
    // bench, 100 flights, one booking each after a wake): broadcast p99 4.7-10.7 ms with the
    // WAL deleted on close.
    int persist = 1;
    sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sql_.run_internal(("PRAGMA journal_size_limit=" + std::to_string(limits::wal_bytes_kept)).c_str());
    // Foreign keys are enforced, as in Durable Objects.
    sql_.run_internal("PRAGMA foreign_keys=ON");
    // NORMAL: a commit does not sync; checkpoints do (the WAL before its frames are copied,
    // the database file after, and the WAL's header before it is reused). The host syncs
    // the WAL after each commit that wrote, off its thread (sync_wal), and releases the
    // batch's outputs then: durability=full. SQLite documents NORMAL in WAL mode as safe from
    // corruption; what it gives up, durability of the last commits, the host's sync returns.
    sql_.run_internal("PRAGMA synchronous=NORMAL");
    // Checkpoints as SQLite's own automatic ones (the same threshold, passive), run from the
    // WAL hook that also tells commit() whether anything was written.
    sqlite3_wal_hook(db_, &Database::on_wal_commit, this);
    if (const char* wal = sqlite3_filename_wal(sqlite3_db_filename(db_, "main")); wal != nullptr) wal_file_ = wal;
    sqlite3_file_control(db_, "main", SQLITE_FCNTL_VFS_POINTER, &vfs_);
    if (wal_file_.empty() || vfs_ == nullptr) throw SqlError(SQLITE_ERROR, "cannot find the WAL of " + path.string(), "");
    sqlite3_limit(db_, SQLITE_LIMIT_VARIABLE_NUMBER, limits::max_sql_bound_parameters);
    sqlite3_limit(db_, SQLITE_LIMIT_SQL_LENGTH, limits::max_sql_statement_bytes);
    sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, limits::max_sql_value_bytes);
    sqlite3_limit(db_, SQLITE_LIMIT_COLUMN, limits::max_sql_columns);
    sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 0);
    sql_.install_authorizer();
  } catch (...) {
    sql_.clear_cache();
    sqlite3_close(db_);
    throw;
  }
}

Database::~Database() {
  delete_session();  // before the connection it records closes
  sql_.clear_cache();  // cached statements would keep the connection (and its file) open
  sqlite3_close(db_);
}

int Database::on_wal_commit(void* self, sqlite3* db, const char* name, int pages) {
  auto* database = static_cast<Database*>(self);
  database->wrote_ = true;
  if (pages >= wal_checkpoint_pages.load(std::memory_order_relaxed)) {
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    // A checkpoint that could not sync the WAL may mean its frames never reach the disk:
    // commit() fails the batch (a busy checkpoint, or another error, just waits for the next).
    if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL) database->checkpoint_failed_ = rc;
  }
  return SQLITE_OK;  // the commit happened whatever the checkpoint did
}

void Database::absorb_wal() {
  int log = -1, checkpointed = -1;
  int rc = sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &checkpointed);
  if (rc != SQLITE_OK || log != checkpointed) {
    throw SqlError(rc == SQLITE_OK ? SQLITE_BUSY : rc,
                   "cannot copy the WAL of " + path_.string() + " into its database file: " + sqlite3_errstr(rc), "");
  }
}

void Database::begin() { sql_.begin_pending_ = true; }
bool Database::commit() {
  sql_.begin_pending_ = false;
  if (!sql_.in_transaction_) return false;  // no event of the batch ran SQL
  // A transaction SQLite ended by itself must fail the batch, never "commit" nothing.
  if (sql_.check_transaction()) sql_.throw_lost("COMMIT");
  assert(!sqlite3_get_autocommit(db_));
  // The batch's changes join the history in its own transaction (a failure fails the batch).
  history_before_commit();
  sql_.in_transaction_ = false;
  wrote_ = false;
  try {
    sql_.run_internal("COMMIT");
  } catch (...) {
    // A COMMIT that failed (a deferred constraint, I/O) may leave the transaction open:
    // rollback() ends it.
    sql_.in_transaction_ = !sqlite3_get_autocommit(db_);
    throw;
  }
  history_after_commit();
  if (int rc = std::exchange(checkpoint_failed_, 0); rc != 0) {
    durability_lost_ = true;
    throw SqlError(rc, std::string("the checkpoint after the commit failed: ") + sqlite3_errstr(rc), "COMMIT");
  }
  return std::exchange(wrote_, false);
}
bool Database::transaction_lost() noexcept { return sql_.check_transaction(); }
void Database::rollback() noexcept {
  sql_.begin_pending_ = sql_.savepoint_pending_ = sql_.savepoint_open_ = false;
  sql_.in_transaction_ = sql_.transaction_lost_ = false;
  if (!sqlite3_get_autocommit(db_)) {
    try {
      sql_.run_internal("ROLLBACK");
    } catch (const SqlError&) {
      // SQLite rolls back by itself when ROLLBACK fails; nothing else to undo.
    }
  }
  history_after_rollback();
}
void Database::drop_everything() {
  forget_history_facts();  // dropped with the rest: its history goes with the data
  sql_.run_internal("PRAGMA defer_foreign_keys=ON");
  auto quote = [](const std::string& name) {
    std::string out = "\"";
    for (char c : name) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  };
  for (const char* type : {"view", "table"}) {
    auto rows = internal("SELECT name FROM sqlite_schema WHERE type = ? AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                         {std::string(type)});
    for (const auto& row : rows) {
      std::string statement = std::string("DROP ") + type + " " + quote(std::get<std::string>(row["name"]));
      sql_.run_internal(statement.c_str());
    }
  }
}

void Database::savepoint() {
  sql_.savepoint_pending_ = true;
  sql_.savepoint_open_ = false;
}
void Database::release() {
  sql_.savepoint_pending_ = false;
  if (!sql_.savepoint_open_) return;  // the event ran no SQL
  assert(sql_.transaction_lost_ || !sqlite3_get_autocommit(db_));
  sql_.run_internal("RELEASE cairn_event");  // throws if SQLite ended the transaction
  sql_.savepoint_open_ = false;
}
void Database::rollback_to_savepoint() {
  sql_.savepoint_pending_ = false;
  if (!sql_.savepoint_open_) return;  // the event ran no SQL
  sql_.run_internal("ROLLBACK TO cairn_event");
  sql_.run_internal("RELEASE cairn_event");
  sql_.savepoint_open_ = false;
}

namespace {

// The admin query's authorizer: reads, SELECT, functions, recursive CTEs and the read-only
// pragmas; nothing that writes, attaches, or controls transactions.
int admin_query_authorizer(void*, int action, const char* a, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_READ:
    case SQLITE_SELECT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_PRAGMA: {
      static constexpr std::array<const char*, 13> readable{
          "table_list", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
          "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
          "page_count", "page_size", "freelist_count"};
      for (const char* name : readable) {
        if (a != nullptr && ::strcasecmp(a, name) == 0) return SQLITE_OK;
      }
      return SQLITE_DENY;
    }
    default:
      return SQLITE_DENY;
  }
}

struct QueryBudget {
  std::chrono::steady_clock::time_point deadline;
};

int query_progress(void* context) {
  auto* budget = static_cast<QueryBudget*>(context);
  return std::chrono::steady_clock::now() > budget->deadline ? 1 : 0;
}

}  // namespace

nlohmann::json Database::read_only_query(std::string_view sql, std::size_t max_rows,
                                         std::chrono::milliseconds budget) {
  const char* tail = nullptr;
  sqlite3_stmt* stmt = nullptr;
  sql_.run_internal("PRAGMA query_only=ON");
  sqlite3_set_authorizer(db_, admin_query_authorizer, nullptr);
  QueryBudget limit{std::chrono::steady_clock::now() + budget};
  sqlite3_progress_handler(db_, 10'000, query_progress, &limit);
  // Whatever happens, the connection goes back to the actor as it was.
  struct Restore {
    Database& db;
    sqlite3_stmt*& stmt;
    ~Restore() {
      sqlite3_finalize(stmt);
      db.sql_.install_progress_handler();
      db.sql_.install_authorizer();
      try {
        db.sql_.run_internal("PRAGMA query_only=OFF");
      } catch (...) {
      }
    }
  } restore{*this, stmt};
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    int code = sqlite3_extended_errcode(db_);
    std::string message = sqlite3_errmsg(db_);
    if ((code & 0xff) == SQLITE_AUTH) {
      message = "the admin API only reads: writes, ATTACH, transactions and pragmas that change "
                "anything are refused (" + message + ")";
    }
    throw SqlError(code, message, std::string(sql));
  }
  if (stmt == nullptr) throw SqlError(SQLITE_ERROR, "the query is empty", std::string(sql));
  for (const char* p = tail; p != nullptr && p < sql.data() + sql.size(); ++p) {
    if (*p != ';' && !std::isspace(static_cast<unsigned char>(*p))) {
      throw SqlError(SQLITE_ERROR, "one statement at a time", std::string(sql));
    }
  }
  if (!sqlite3_stmt_readonly(stmt)) {
    throw SqlError(SQLITE_READONLY, "the query would write: the admin API only reads", std::string(sql));
  }
  nlohmann::json columns = nlohmann::json::array();
  int n = sqlite3_column_count(stmt);
  for (int i = 0; i < n; ++i) columns.push_back(sqlite3_column_name(stmt, i));
  nlohmann::json rows = nlohmann::json::array();
  bool truncated = false;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (rows.size() >= max_rows) {
      truncated = true;
      break;
    }
    nlohmann::json row = nlohmann::json::array();
    for (int i = 0; i < n; ++i) {
      switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
          row.push_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt, i)));
          break;
        case SQLITE_FLOAT:
          row.push_back(sqlite3_column_double(stmt, i));
          break;
        case SQLITE_TEXT:
          row.push_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                                    static_cast<std::size_t>(sqlite3_column_bytes(stmt, i))));
          break;
        case SQLITE_BLOB: {
          const auto* bytes = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, i));
          row.push_back(nlohmann::json(Blob(bytes, bytes + sqlite3_column_bytes(stmt, i))));  // byte values, as Row::to_json
          break;
        }
        default:
          row.push_back(nullptr);
      }
    }
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    int code = sqlite3_extended_errcode(db_);
    std::string message = code == SQLITE_INTERRUPT
                              ? "the query ran over " + std::to_string(budget.count()) + " ms"
                              : sqlite3_errmsg(db_);
    throw SqlError(code, message, std::string(sql));
  }
  return {{"columns", std::move(columns)}, {"rows", std::move(rows)}, {"truncated", truncated}};
}

void Database::copy_to(const std::filesystem::path& file) { copy_database(db_, file); }

void Database::import_from(const std::filesystem::path& file) {
  sqlite3* in = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &in, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(in, sqlite3_close);
  if (rc != SQLITE_OK) throw SqlError(rc, "cannot open " + file.string(), "");
  sql_.clear_cache();
  forget_history_facts();  // the copy brings its own history, or none
  sqlite3_backup* backup = sqlite3_backup_init(db_, "main", in, "main");
  if (backup == nullptr) throw SqlError(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_), "");
  rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    std::string why = rc == SQLITE_READONLY ? " (its page size differs from this database's)" : "";
    throw SqlError(rc, std::string("the import failed: ") + sqlite3_errstr(rc) + why, "");
  }
}

bool Database::writing() const noexcept { return sqlite3_txn_state(db_, "main") == SQLITE_TXN_WRITE; }

bool Database::is_empty() {
  // The runtime's record of whose database it is is not data.
  return internal("SELECT 1 FROM sqlite_schema WHERE name <> '_cairn_actor' LIMIT 1").size() == 0;
}

std::uint64_t Database::bytes_on_disk() const { return database_bytes(path_); }

std::uint64_t database_bytes(const std::filesystem::path& file) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (const char* suffix : {"", "-wal"}) {
    auto size = std::filesystem::file_size(file.string() + suffix, ec);
    if (!ec) total += size;
  }
  return total;
}

bool remove_database_files(const std::filesystem::path& file, std::error_code& ec, std::string* failed) {
  ec.clear();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code one;
    if (std::filesystem::remove(file.string() + suffix, one)) detail::replicate_removal(file.string() + suffix);
    if (one && !ec) {
      ec = one;
      if (failed != nullptr) *failed = file.string() + suffix;
    }
  }
  return !ec;
}

}  // namespace cairn
