// The data directory's shard layout, and the conversion of a directory of the layout before
// shards: once, crash-safe, nothing lost (the WAL moves with its database), other files left.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "data_layout.hpp"
#include "temp_dir.hpp"

using namespace cairn;
using cairn::testing::TempDir;
namespace fs = std::filesystem;

namespace {

class Notes final : public Actor {
 public:
  explicit Notes(Context& ctx) : ctx_(ctx) { ctx_.sql().exec("CREATE TABLE IF NOT EXISTS notes (text TEXT)"); }
  Methods methods() override {
    return {{"add", [this](const json& args) -> Result<json> {
               ctx_.sql().exec("INSERT INTO notes VALUES (?)", args.get<std::string>());
               return json(true);
             }},
            {"all", [this](const json&) -> Result<json> {
               json out = json::array();
               for (const auto& row : ctx_.sql().exec("SELECT text FROM notes ORDER BY rowid")) {
                 out.push_back(std::get<std::string>(row["text"]));
               }
               return out;
             }}};
  }

 private:
  Context& ctx_;
};

std::unique_ptr<Runtime> open_runtime(const fs::path& dir) {
  Registry registry;
  registry.add<Notes>("NOTES");
  RuntimeOptions options;
  options.data_dir = dir;
  options.threads = 2;
  return std::make_unique<Runtime>(std::move(registry), options);
}

// An actor database of the old layout, <dir>/NOTES/<hex>.sqlite, as an earlier cairn left
// it: WAL mode, its last rows only in the WAL (no checkpoint at close).
fs::path old_database(const fs::path& dir, const std::string& name, const std::vector<std::string>& notes) {
  auto id = ActorId::make("NOTES", name).value();
  fs::create_directories(dir / "NOTES");
  auto file = dir / "NOTES" / (id.hex() + ".sqlite");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE notes (text TEXT)",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  for (const auto& note : notes) {
    std::string sql = "INSERT INTO notes VALUES ('" + note + "')";
    REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  sqlite3_close(db);
  REQUIRE(fs::exists(file.string() + "-wal"));
  return file;
}

json notes_of(Runtime& runtime, const std::string& name) {
  return testing::call(*runtime.get("NOTES", name), "all").value();
}

}  // namespace

TEST_CASE("an id's shard is its top 10 bits, and its database lives in that shard's directory") {
  auto id = ActorId::make("FLIGHT", "LX-100").value();
  unsigned top = static_cast<unsigned>(std::stoul(id.hex().substr(0, 4), nullptr, 16)) >> 6;
  CHECK(id.shard() == top);
  CHECK(id.shard() < ActorId::shard_count);
  char shard[16];
  std::snprintf(shard, sizeof shard, "%04u", id.shard());
  CHECK(detail::actor_database("/data", id) == fs::path("/data/_shards") / shard / "FLIGHT" / (id.hex() + ".sqlite"));
  // Spread: 4,096 names touch most of the 1,024 shards.
  std::set<unsigned> seen;
  for (int i = 0; i < 4096; ++i) seen.insert(ActorId::make("FLIGHT", std::to_string(i))->shard());
  CHECK(seen.size() > 950);
}

TEST_CASE("a data directory of the layout before shards is converted at start, its WAL and other files kept") {
  TempDir dir;
  auto a = old_database(dir.path(), "a", {"one", "two"});
  auto b = old_database(dir.path(), "b", {"three"});
  { std::ofstream(dir.path() / "NOTES" / "README.txt") << "not an actor's"; }
  auto runtime = open_runtime(dir.path());
  CHECK(notes_of(*runtime, "a") == json{"one", "two"});
  CHECK(notes_of(*runtime, "b") == json{"three"});
  CHECK(!fs::exists(a));
  CHECK(!fs::exists(a.string() + "-wal"));
  CHECK(fs::exists(detail::actor_database(dir.path(), ActorId::make("NOTES", "a").value())));
  CHECK(fs::exists(dir.path() / "NOTES" / "README.txt"));  // not ours to move
  CHECK(fs::exists(dir.path() / "_cairn" / "layout"));
  // Writes after the conversion land in the new place, and survive a restart.
  REQUIRE(testing::call(*runtime->get("NOTES", "b"), "add", "four").ok());
  runtime.reset();
  runtime = open_runtime(dir.path());
  CHECK(notes_of(*runtime, "b") == json{"three", "four"});
}

TEST_CASE("a conversion cut short before its mark starts over, and one cut after it finishes") {
  SUBCASE("crash after some links, before the mark: the old names are the truth") {
    TempDir dir;
    auto a = old_database(dir.path(), "a", {"kept"});
    auto target = detail::actor_database(dir.path(), ActorId::make("NOTES", "a").value());
    fs::create_directories(target.parent_path());
    { std::ofstream(target) << "a half-made link of an earlier try"; }
    auto runtime = open_runtime(dir.path());
    CHECK(notes_of(*runtime, "a") == json{"kept"});
    CHECK(!fs::exists(a));
  }
  SUBCASE("crash after the mark, before the old names were removed") {
    TempDir dir;
    auto a = old_database(dir.path(), "a", {"kept"});
    auto target = detail::actor_database(dir.path(), ActorId::make("NOTES", "a").value());
    fs::create_directories(target.parent_path());
    for (const char* suffix : {"", "-wal", "-shm"}) {  // every file was linked before the mark
      if (fs::exists(a.string() + suffix)) fs::create_hard_link(a.string() + suffix, target.string() + suffix);
    }
    fs::create_directories(dir.path() / "_cairn");
    { std::ofstream(dir.path() / "_cairn" / "layout") << "shards-1\n"; }
    auto runtime = open_runtime(dir.path());
    CHECK(notes_of(*runtime, "a") == json{"kept"});
    CHECK(!fs::exists(a));
    CHECK(!fs::exists(dir.path() / "NOTES"));  // emptied, then removed
  }
}

TEST_CASE("a data directory marked with an unknown layout is refused, untouched") {
  TempDir dir;
  auto a = old_database(dir.path(), "a", {"x"});
  fs::create_directories(dir.path() / "_cairn");
  { std::ofstream(dir.path() / "_cairn" / "layout") << "shards-9\n"; }
  std::string error;
  try {
    open_runtime(dir.path());
  } catch (const std::exception& e) {
    error = e.what();
  }
  CHECK(error.find("shards-9") != std::string::npos);
  CHECK(fs::exists(a));
}
