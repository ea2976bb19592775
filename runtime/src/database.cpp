// Database: open with pragmas and limits; the host's transaction statements.
#include "database.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include "cairn/limits.hpp"

namespace cairn {
namespace {

sqlite3* open_connection(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
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
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::filesystem::remove(scratch.string() + suffix, ignored);
    }
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
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return;
    throw SqlError(SQLITE_CANTOPEN, "cannot create " + path.string() + ": " + std::strerror(errno), "");
  }
  std::size_t written = 0;
  while (written < image.size()) {
    auto n = ::write(fd, image.data() + written, image.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  bool ok = written == image.size() && ::fdatasync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    throw SqlError(SQLITE_IOERR, "cannot write " + path.string() + ": " + std::strerror(saved), "");
  }
}

sqlite3* open_database(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) create_from_image(path);
  return open_connection(path);
}

}  // namespace

Database::Database(const std::filesystem::path& path, Durability durability)
    : db_(open_database(path)), sql_(db_) {
  try {
    // One process owns each file: exclusive locking keeps the WAL index in heap memory
    // (no -shm file), so an open database holds 2 descriptors instead of 3.
    sql_.run_internal("PRAGMA locking_mode=EXCLUSIVE");
    sql_.run_internal("PRAGMA journal_mode=WAL");
    // The WAL file stays when the database closes (eviction), cut to a small size: the first
    // commit after a wake then overwrites blocks the file already has, and its fsync need not
    // journal a new file size. Measured (hibernation bench, 100 flights, one booking each
    // after a wake): broadcast p99 4.7-10.7 ms with the WAL deleted on close.
    int persist = 1;
    sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    sql_.run_internal(("PRAGMA journal_size_limit=" + std::to_string(limits::wal_bytes_kept)).c_str());
    // Foreign keys are enforced, as in Durable Objects.
    sql_.run_internal("PRAGMA foreign_keys=ON");
    sql_.run_internal(durability == Durability::full ? "PRAGMA synchronous=FULL"
                                                     : "PRAGMA synchronous=NORMAL");
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
  sql_.clear_cache();  // cached statements would keep the connection (and its file) open
  sqlite3_close(db_);
}

void Database::begin() { sql_.begin_pending_ = true; }
void Database::commit() {
  sql_.begin_pending_ = false;
  if (!sqlite3_get_autocommit(db_)) sql_.run_internal("COMMIT");  // else no event ran SQL
}
void Database::rollback() noexcept {
  sql_.begin_pending_ = sql_.savepoint_pending_ = sql_.savepoint_open_ = false;
  if (sqlite3_get_autocommit(db_)) return;
  try {
    sql_.run_internal("ROLLBACK");
  } catch (const SqlError&) {
    // SQLite rolls back by itself when ROLLBACK fails; nothing else to undo.
  }
}
void Database::drop_everything() {
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
  if (std::exchange(sql_.savepoint_open_, false)) sql_.run_internal("RELEASE cairn_event");
}
void Database::rollback_to_savepoint() {
  sql_.savepoint_pending_ = false;
  if (!std::exchange(sql_.savepoint_open_, false)) return;  // the event ran no SQL
  sql_.run_internal("ROLLBACK TO cairn_event");
  sql_.run_internal("RELEASE cairn_event");
}

}  // namespace cairn
