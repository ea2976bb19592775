#include "cairn/sql.hpp"

#include <doctest/doctest.h>

#include "cairn/limits.hpp"
#include "database.hpp"
#include "database_vfs.hpp"
#include "fault_vfs.hpp"
#include "temp_dir.hpp"

using cairn::Database;
using cairn::SqlError;
using cairn::testing::TempDir;

namespace {

struct Fixture {
  TempDir dir;
  Database db{dir.path() / "a.sqlite"};
  cairn::Sql& sql = db.sql();
};

bool rejected_with(cairn::Sql& sql, const std::string& statement, const std::string& words) {
  try {
    sql.exec(statement);
  } catch (const SqlError& e) {
    if (std::string(e.what()).find(words) != std::string::npos) return true;
    FAIL_CHECK("rejected with another message: " << e.what());
    return false;
  }
  return false;
}

}  // namespace

TEST_CASE("exec binds parameters and the cursor gives rows, names and counts") {
  Fixture f;
  f.sql.exec("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, x REAL, b BLOB)");
  auto inserted = f.sql.exec("INSERT INTO t VALUES (?, ?, ?, ?), (?, ?, ?, ?)", "a", 1, 1.5,
                             cairn::Blob{1, 2}, "b", 2, nullptr, nullptr);
  CHECK(inserted.rows_written() == 2);
  auto cursor = f.sql.exec("SELECT k, n, x, b FROM t ORDER BY k");
  CHECK(cursor.column_names() == std::vector<std::string>{"k", "n", "x", "b"});
  REQUIRE(cursor.size() == 2);
  auto array = cursor.to_array();
  CHECK(array[0]["k"] == "a");
  CHECK(array[0]["n"] == 1);
  CHECK(array[0]["x"] == 1.5);
  CHECK(array[0]["b"] == nlohmann::json::array({1, 2}));
  CHECK(array[1]["x"].is_null());
  auto raw = cursor.raw();
  CHECK(std::get<std::int64_t>(raw[1][1]) == 2);
  CHECK(cursor.rows_read() >= 2);
  int seen = 0;
  for (const auto& row : cursor) seen += static_cast<int>(std::get<std::int64_t>(row["n"]));
  CHECK(seen == 3);
}

TEST_CASE("one() demands exactly one row") {
  Fixture f;
  f.sql.exec("CREATE TABLE t (n INTEGER)");
  CHECK_THROWS_AS(f.sql.exec("SELECT n FROM t").one(), std::logic_error);
  f.sql.exec("INSERT INTO t VALUES (1), (2)");
  CHECK_THROWS_AS(f.sql.exec("SELECT n FROM t").one(), std::logic_error);
  CHECK(std::get<std::int64_t>(f.sql.exec("SELECT n FROM t WHERE n = 2").one()[0]) == 2);
}

TEST_CASE("a value read from a temporary cursor stays valid") {
  Fixture f;
  f.sql.exec("CREATE TABLE t (s TEXT)");
  f.sql.exec("INSERT INTO t VALUES ('a long enough string to live on the heap, not inline')");
  const auto& value = f.sql.exec("SELECT s FROM t").one()["s"];
  CHECK(std::get<std::string>(value) == "a long enough string to live on the heap, not inline");
}

TEST_CASE("several statements run in order and the cursor is the last one's") {
  Fixture f;
  auto cursor = f.sql.exec("CREATE TABLE t (n); INSERT INTO t VALUES (7); SELECT n FROM t;");
  CHECK(std::get<std::int64_t>(cursor.one()[0]) == 7);
}

TEST_CASE("user SQL may not control transactions, attach databases or write pragmas") {
  Fixture f;
  CHECK(rejected_with(f.sql, "BEGIN", "each event is one transaction"));
  CHECK(rejected_with(f.sql, "COMMIT", "each event is one transaction"));
  CHECK(rejected_with(f.sql, "ROLLBACK", "each event is one transaction"));
  CHECK(rejected_with(f.sql, "SAVEPOINT x", "each event is one transaction"));
  CHECK(rejected_with(f.sql, "RELEASE x", "each event is one transaction"));
  CHECK(rejected_with(f.sql, "ATTACH DATABASE 'other.db' AS other", "ATTACH"));
  CHECK(rejected_with(f.sql, "PRAGMA journal_mode=DELETE", "PRAGMA journal_mode"));
  CHECK(rejected_with(f.sql, "PRAGMA synchronous=OFF", "PRAGMA synchronous"));
}

TEST_CASE("read-only pragmas such as table_list are allowed") {
  Fixture f;
  f.sql.exec("CREATE TABLE seats (id TEXT)");
  bool found = false;
  for (const auto& row : f.sql.exec("PRAGMA table_list")) {
    found = found || std::get<std::string>(row["name"]) == "seats";
  }
  CHECK(found);
  CHECK(f.sql.exec("PRAGMA table_info(seats)").size() == 1);
}

TEST_CASE("tables named _cairn_ belong to the runtime") {
  Fixture f;
  CHECK(rejected_with(f.sql, "CREATE TABLE _cairn_alarms (x)", "belongs to the runtime"));
}

TEST_CASE("a statement the runtime ran is not reused for user SQL of the same text") {
  Fixture f;
  f.db.begin();
  f.db.internal("CREATE TABLE _cairn_secret (x)");
  f.db.internal("INSERT INTO _cairn_secret VALUES (1)");
  CHECK(f.db.internal("SELECT x FROM _cairn_secret").size() == 1);  // prepared and kept
  CHECK(rejected_with(f.sql, "SELECT x FROM _cairn_secret", "belongs to the runtime"));
  CHECK(rejected_with(f.sql, "BEGIN", "not allowed"));  // the host's own BEGIN is cached too
  f.db.commit();
}

TEST_CASE("a kept statement runs again with new values and sees schema changes") {
  Fixture f;
  f.sql.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
  for (int i = 0; i < 300; ++i) f.sql.exec("INSERT INTO t (k, v) VALUES (?, ?)", i, "v" + std::to_string(i));
  for (int i = 0; i < 300; i += 37) {
    CHECK(std::get<std::string>(f.sql.exec("SELECT v FROM t WHERE k = ?", i).one()["v"]) == "v" + std::to_string(i));
  }
  // A failed step leaves the kept statement usable.
  CHECK_THROWS_AS(f.sql.exec("INSERT INTO t (k, v) VALUES (?, ?)", 1, "dup"), SqlError);
  CHECK(f.sql.exec("INSERT INTO t (k, v) VALUES (?, ?)", 1000, "ok").rows_written() == 1);
  CHECK(f.sql.exec("SELECT * FROM t WHERE k = ?", 5).column_names().size() == 2);
  f.sql.exec("ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'w'");
  CHECK(f.sql.exec("SELECT * FROM t WHERE k = ?", 5).column_names().size() == 3);
  // More distinct texts than the cache keeps.
  for (int i = 0; i < 400; ++i) CHECK(f.sql.exec("SELECT " + std::to_string(i) + " AS n").one()["n"] == cairn::SqlValue(std::int64_t{i}));
}

TEST_CASE("Durable Objects' limits hold: 100 parameters, 100 KB statements, 2 MB values") {
  Fixture f;
  f.sql.exec("CREATE TABLE t (v)");
  std::string many = "SELECT ?";
  std::vector<cairn::SqlValue> values{std::int64_t{0}};
  for (int i = 1; i <= cairn::limits::max_sql_bound_parameters; ++i) {
    many += ", ?";
    values.emplace_back(std::int64_t{i});
  }
  CHECK_THROWS_AS(f.sql.exec(many, values), SqlError);
  values.pop_back();
  many.resize(many.size() - 3);
  CHECK(f.sql.exec(many, values).one().values().size() == 100);

  std::string huge = "SELECT 1 -- " + std::string(cairn::limits::max_sql_statement_bytes, 'x');
  CHECK_THROWS_AS(f.sql.exec(huge), SqlError);

  std::string big_value(cairn::limits::max_sql_value_bytes + 1, 'v');
  CHECK_THROWS_AS(f.sql.exec("INSERT INTO t VALUES (?)", big_value), SqlError);
  f.sql.exec("INSERT INTO t VALUES (?)", std::string(1000, 'v'));
}

TEST_CASE("a parameter count mismatch is an error, not a silent NULL") {
  Fixture f;
  CHECK_THROWS_AS(f.sql.exec("SELECT ?, ?", 1), SqlError);
  CHECK_THROWS_AS(f.sql.exec("SELECT 1", 1), SqlError);
}

TEST_CASE("transaction_sync keeps everything or, when it throws, nothing") {
  Fixture f;
  f.sql.exec("CREATE TABLE t (n)");
  f.sql.transaction_sync([&] { f.sql.exec("INSERT INTO t VALUES (1)"); });
  CHECK_THROWS_AS(f.sql.transaction_sync([&] {
    f.sql.exec("INSERT INTO t VALUES (2)");
    throw std::runtime_error("no");
  }),
                  std::runtime_error);
  CHECK(f.sql.exec("SELECT n FROM t").size() == 1);
}

TEST_CASE("database_size reports the pages in use") {
  Fixture f;
  auto before = f.sql.database_size();
  f.sql.exec("CREATE TABLE t (v)");
  f.sql.exec("INSERT INTO t VALUES (?)", std::string(100'000, 'x'));
  CHECK(f.sql.database_size() > before);
}

TEST_CASE("a new database starts in WAL mode without a rollback journal and keeps what it commits") {
  TempDir dir;
  auto path = dir.path() / "new.sqlite";
  {
    Database db{path};
    CHECK(std::get<std::string>(db.internal("PRAGMA journal_mode").one()["journal_mode"]) == "wal");
    CHECK_FALSE(std::filesystem::exists(dir.path() / "new.sqlite-journal"));
    db.begin();
    db.sql().exec("CREATE TABLE t (x)");
    db.sql().exec("INSERT INTO t VALUES (42)");
    db.commit();
  }
  // Nothing but the database and its kept WAL (no scratch file left in the directory).
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    auto name = entry.path().filename().string();
    CHECK((name == "new.sqlite" || name == "new.sqlite-wal"));
  }
  Database again{path};
  CHECK(again.sql().exec("SELECT x FROM t").one()["x"] == cairn::SqlValue(std::int64_t{42}));
  CHECK(std::get<std::string>(again.internal("PRAGMA integrity_check").one()["integrity_check"]) == "ok");
}

TEST_CASE("a WAL grows ahead of its frames: from 32 KiB by doubling, then 256 KiB at a time") {
  using cairn::detail::wal_growth_target;
  CHECK(wal_growth_target(33) == 32 * 1024);
  CHECK(wal_growth_target(32 * 1024) == 32 * 1024);
  CHECK(wal_growth_target(32 * 1024 + 1) == 64 * 1024);
  CHECK(wal_growth_target(200 * 1024) == 256 * 1024);
  CHECK(wal_growth_target(256 * 1024 + 1) == 512 * 1024);
  CHECK(wal_growth_target(3 * 1024 * 1024 + 5) == 3 * 1024 * 1024 + 256 * 1024);
}

namespace {

// Forty commits of a row each (x = 0..39, 3,000 bytes of padding) into table t (x, pad).
void insert_forty(Database& db) {
  for (int i = 0; i < 40; ++i) {
    db.begin();
    db.sql().exec("INSERT INTO t VALUES (?, randomblob(3000))", {cairn::SqlValue(std::int64_t{i})});
    db.commit();
  }
}

// A crash, as the files stood: copies `path` and its WAL into `copy` while the database is
// still open (no checkpoint at close), opens the copy and checks it holds the forty rows.
void check_copy_holds_forty(const std::filesystem::path& path, const std::filesystem::path& copy) {
  std::filesystem::path wal = path.string() + "-wal";
  for (const auto& file : {path, wal}) std::filesystem::copy_file(file, copy / file.filename());
  Database again{copy / path.filename()};
  auto row = again.sql().exec("SELECT count(*) AS n, sum(x) AS s FROM t").one();
  CHECK(row["n"] == cairn::SqlValue(std::int64_t{40}));
  CHECK(row["s"] == cairn::SqlValue(std::int64_t{40 * 39 / 2}));
  CHECK(std::get<std::string>(again.internal("PRAGMA integrity_check").one()["integrity_check"]) == "ok");
}

}  // namespace

TEST_CASE("a WAL grown ahead of its frames gives back every commit and nothing after a crash") {
  // The zeros past the last frame must end SQLite's recovery as a stale frame does. The crash
  // is a copy of the files taken while the database is open (no checkpoint at close).
  TempDir dir;
  auto path = dir.path() / "grown.sqlite";
  auto copy = dir.path() / "copy";
  std::filesystem::create_directory(copy);
  Database db{path};
  db.begin();
  db.sql().exec("CREATE TABLE t (x, pad)");
  db.commit();
  auto wal = std::filesystem::path(path.string() + "-wal");
  CHECK(std::filesystem::file_size(wal) == 32 * 1024);  // one small commit: the first step
  insert_forty(db);
  auto size = static_cast<std::int64_t>(std::filesystem::file_size(wal));
  CHECK(size == cairn::detail::wal_growth_target(size));  // on a step: grown, not appended
  CHECK(size >= 40 * 3000);
  check_copy_holds_forty(path, copy);
}

TEST_CASE("the storage pool's sync of a WAL that exists but is empty reaches the disk") {
  // SQLite's xAccess calls an empty file absent; the shim skips only the header sync of the
  // handle that wrote the header, never the pool's sync (which also syncs the directory).
  cairn::testing::FaultVfs::install();
  TempDir dir;
  auto path = dir.path() / "empty-wal.sqlite";
  Database db{path};
  db.internal("SELECT count(*) AS n FROM sqlite_schema");  // a read: the WAL exists, empty
  REQUIRE(std::filesystem::exists(db.wal_file()));
  REQUIRE(std::filesystem::file_size(db.wal_file()) == 0);
  cairn::testing::FaultVfs::arm(cairn::testing::Fault::fsync, "empty-wal.sqlite-wal");
  std::string error;
  bool synced = cairn::sync_wal(db.vfs(), db.wal_file(), error, true);
  auto failures = cairn::testing::FaultVfs::failures();
  cairn::testing::FaultVfs::clear();
  CHECK_FALSE(synced);
  CHECK(failures == 1);
  CHECK(cairn::sync_wal(db.vfs(), db.wal_file(), error, true));
}

TEST_CASE("a WAL that cannot grow ahead on a nearly full disk loses no commit") {
  // The zeros ahead are written in large pieces; when they fail and SQLite's own frames (a page
  // and its header) still fit, every commit must stay whole, and the zeros go on only above
  // every byte SQLite wrote.
  cairn::testing::FaultVfs::install();
  TempDir dir;
  auto path = dir.path() / "nearly-full.sqlite";
  auto copy = dir.path() / "copy";
  std::filesystem::create_directory(copy);
  Database db{path};
  cairn::testing::FaultVfs::arm(cairn::testing::Fault::nearly_full, "nearly-full.sqlite-wal");
  db.begin();
  db.sql().exec("CREATE TABLE t (x, pad)");
  db.commit();
  insert_forty(db);
  auto failures = cairn::testing::FaultVfs::failures();
  cairn::testing::FaultVfs::clear();
  CHECK(failures > 0);  // the fills did fail
  std::string error;
  REQUIRE(cairn::sync_wal(db.vfs(), db.wal_file(), error));
  check_copy_holds_forty(path, copy);
}
