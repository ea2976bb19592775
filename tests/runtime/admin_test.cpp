// cairn::Admin on an in-process runtime: the names index across evictions and restarts,
// read-only queries, export/import, delete, and a backup restored elsewhere.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include "cairn/admin.hpp"
#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"
#include "data_layout.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Notes: one table, a method that adds a row and one that counts them.
class Notes final : public Actor {
 public:
  explicit Notes(Context& ctx) : ctx_(ctx) {}
  Methods methods() override {
    return {
        {"add", [this](const json& args) -> Result<json> {
           ctx_.sql().exec("CREATE TABLE IF NOT EXISTS notes (text TEXT NOT NULL)");
           ctx_.sql().exec("INSERT INTO notes VALUES (?)", args.get<std::string>());
           return json(true);
         }},
        {"alarm", [this](const json&) -> Result<json> {
           auto set = ctx_.set_alarm(ctx_.now() + 1h);
           if (!set) return set.error();
           return json(true);
         }},
        {"count", [this](const json&) -> Result<json> {
           ctx_.sql().exec("CREATE TABLE IF NOT EXISTS notes (text TEXT NOT NULL)");
           return json(std::get<std::int64_t>(ctx_.sql().exec("SELECT count(*) AS n FROM notes").one()["n"]));
         }},
    };
  }

 private:
  Context& ctx_;
};

std::unique_ptr<Runtime> make_runtime(const std::filesystem::path& dir) {
  Registry registry;
  registry.add<Notes>("NOTES");
  RuntimeOptions options;
  options.data_dir = dir;
  options.threads = 2;
  return std::make_unique<Runtime>(std::move(registry), options);
}

void add(Runtime& rt, const std::string& name, const std::string& text) {
  REQUIRE(testing::call(*rt.get("NOTES", name), "add", json(text)).ok());
}

std::vector<std::string> names(const json& page) {
  std::vector<std::string> out;
  for (const auto& a : page["actors"]) out.push_back(a["name"].get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("actors are listed by name after eviction and restart, by prefix and page") {
  TempDir dir;
  {
    auto rt = make_runtime(dir.path());
    for (const char* name : {"b-1", "a-2", "a-1", "a\xff", "c"}) add(*rt, name, "x");
    REQUIRE(rt->evict("NOTES", "a-1").value());
    Admin admin(*rt);
    auto page = admin.list("NOTES", "a", "", 10);
    REQUIRE(page.ok());
    CHECK(names(*page) == std::vector<std::string>{"a-1", "a-2", "a\xff"});
    CHECK((*page)["next"].is_null());
    CHECK(admin.bindings()[0]["actors"] == 5);
  }
  auto rt = make_runtime(dir.path());
  Admin admin(*rt);
  auto first = admin.list("NOTES", "", "", 2);
  REQUIRE(first.ok());
  CHECK(names(*first) == std::vector<std::string>{"a-1", "a-2"});
  CHECK((*first)["next"] == "a-2");
  for (const auto& a : (*first)["actors"]) CHECK(a["live"] == false);  // not woken since the restart
  auto second = admin.list("NOTES", "", "a-2", 2);
  CHECK(names(*second) == std::vector<std::string>{"a\xff", "b-1"});
  auto last = admin.list("NOTES", "", "b-1", 2);
  CHECK(names(*last) == std::vector<std::string>{"c"});
  CHECK((*last)["next"].is_null());
  CHECK(names(*admin.list("NOTES", "a\xff", "", 5)) == std::vector<std::string>{"a\xff"});
  CHECK(admin.list("NOPE", "", "", 5).error().code == Code::not_found);
  CHECK(admin.list("NOTES", "", "", 0).error().code == Code::invalid_argument);
}

TEST_CASE("a read-only query reads, and everything that would write is refused unchanged") {
  TempDir dir;
  auto rt = make_runtime(dir.path());
  Admin admin(*rt);
  for (int i = 0; i < 5; ++i) add(*rt, "q", "note " + std::to_string(i));
  auto rows = admin.query("NOTES", "q", "SELECT text FROM notes ORDER BY rowid", 3);
  REQUIRE(rows.ok());
  CHECK((*rows)["columns"] == json::array({"text"}));
  CHECK((*rows)["rows"] == json::parse(R"([["note 0"],["note 1"],["note 2"]])"));
  CHECK((*rows)["truncated"] == true);
  for (const char* bad : {"DELETE FROM notes", "INSERT INTO notes VALUES ('x')", "DROP TABLE notes",
                          "UPDATE notes SET text = 'y'", "CREATE TABLE t (a)", "PRAGMA query_only=OFF",
                          "PRAGMA journal_mode=DELETE", "ATTACH DATABASE '/tmp/x.db' AS x", "BEGIN",
                          "SELECT 1; DELETE FROM notes", "VACUUM", "not sql at all"}) {
    CAPTURE(bad);
    auto refused = admin.query("NOTES", "q", bad, 10);
    REQUIRE(!refused.ok());
    CHECK(refused.error().code == Code::invalid_argument);
  }
  CHECK(testing::call(*rt->get("NOTES", "q"), "count").value() == 5);
  // The actor's own SQL still works afterwards (its authorizer and query_only are back).
  add(*rt, "q", "after");
  CHECK(testing::call(*rt->get("NOTES", "q"), "count").value() == 6);
  auto runaway = admin.query(
      "NOTES", "q", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", 1);
  REQUIRE(!runaway.ok());
  CHECK(runaway.error().code == Code::timeout);
  CHECK(admin.query("NOTES", "never-made", "SELECT 1", 1).error().code == Code::not_found);
}

TEST_CASE("export, delete and import give back the same rows and alarms") {
  TempDir dir;
  auto rt = make_runtime(dir.path());
  Admin admin(*rt);
  for (int i = 0; i < 20; ++i) add(*rt, "e", "row " + std::to_string(i));
  REQUIRE(testing::call(*rt->get("NOTES", "e"), "alarm").ok());
  auto before = admin.query("NOTES", "e", "SELECT rowid, text FROM notes ORDER BY rowid", 100);
  auto bytes = admin.export_database("NOTES", "e");
  REQUIRE(bytes.ok());
  CHECK(bytes->substr(0, 15) == "SQLite format 3");
  auto evictions = rt->stats().evictions;
  auto removed = admin.remove("NOTES", "e");
  REQUIRE(removed.ok());
  CHECK((*removed)["deleted"] == true);
  CHECK((*removed)["live"] == true);
  CHECK(rt->stats().evictions == evictions);  // the operator's delete is not an eviction
  REQUIRE(testing::eventually([&] { return rt->stats().live_instances == 0; }));
  auto gone = admin.inspect("NOTES", "e");
  REQUIRE(!gone.ok());
  CHECK(gone.error().code == Code::not_found);
  CHECK(names(*admin.list("NOTES", "", "", 10)).empty());
  CHECK(rt->stats().actors_with_alarms == 0);
  CHECK(admin.import_database("NOTES", "e", "not a database").error().code == Code::invalid_argument);
  auto damaged = *bytes;
  damaged.resize(damaged.size() / 2);
  CHECK(admin.import_database("NOTES", "e", damaged).error().code == Code::invalid_argument);
  auto imported = admin.import_database("NOTES", "e", *bytes);
  REQUIRE(imported.ok());
  CHECK(admin.query("NOTES", "e", "SELECT rowid, text FROM notes ORDER BY rowid", 100).value() == before.value());
  CHECK(rt->stats().actors_with_alarms == 1);
  auto inspected = admin.inspect("NOTES", "e");
  REQUIRE(inspected.ok());
  CHECK((*inspected)["alarms"].size() == 1);
  bool found = false;
  for (const auto& table : (*inspected)["tables"]) {
    if (table["name"] == "notes") found = table["rows"] == 20;
  }
  CHECK(found);
  // Into an actor that has data: refused.
  add(*rt, "full", "x");
  CHECK(admin.import_database("NOTES", "full", *bytes).error().code == Code::conflict);
  CHECK(testing::call(*rt->get("NOTES", "e"), "count").value() == 20);
}

TEST_CASE("a backup restores into an empty directory that serves every actor as before") {
  TempDir dir, copy, restored;
  {
    auto rt = make_runtime(dir.path());
    for (int i = 0; i < 12; ++i) add(*rt, "actor-" + std::to_string(i % 4), "n" + std::to_string(i));
    REQUIRE(testing::call(*rt->get("NOTES", "actor-1"), "alarm").ok());
    REQUIRE(rt->evict("NOTES", "actor-2").value());
    Admin admin(*rt);
    auto report = admin.backup(copy.path() / "b");
    REQUIRE(report.ok());
    CHECK((*report)["actors"] == 4);
    CHECK(admin.backup(copy.path() / "b").error().code == Code::conflict);  // not empty
    // Writes after the backup are not in it.
    add(*rt, "actor-0", "later");
  }
  CHECK(restore_backup(copy.path() / "b", dir.path()).error().code == Code::conflict);
  auto restoring = restore_backup(copy.path() / "b", restored.path() / "data");
  REQUIRE(restoring.ok());
  CHECK((*restoring)["actors"] == 4);
  auto rt = make_runtime(restored.path() / "data");
  Admin admin(*rt);
  CHECK(names(*admin.list("NOTES", "", "", 10)) ==
        std::vector<std::string>{"actor-0", "actor-1", "actor-2", "actor-3"});
  for (int i = 0; i < 4; ++i) {
    CHECK(testing::call(*rt->get("NOTES", "actor-" + std::to_string(i)), "count").value() == 3);
  }
  CHECK(rt->stats().actors_with_alarms == 1);
  CHECK(restore_backup(dir.path(), restored.path() / "other").error().code == Code::invalid_argument);
}

TEST_CASE("an operator's look at cold actors evicts no live instance") {
  TempDir dir;
  Registry registry;
  registry.add<Notes>("NOTES");
  RuntimeOptions options;
  options.data_dir = dir.path();
  options.threads = 2;
  options.max_live_instances = 2;
  options.idle_timeout = 0ms;
  Runtime rt(std::move(registry), options);
  for (int i = 0; i < 6; ++i) add(rt, "cold-" + std::to_string(i), "x");
  for (int i = 0; i < 6; ++i) REQUIRE(rt.evict("NOTES", "cold-" + std::to_string(i)).ok());
  REQUIRE(testing::eventually([&] { return rt.stats().live_instances == 0 && rt.stats().stopping_instances == 0; }));
  add(rt, "hot-a", "x");
  add(rt, "hot-b", "x");
  auto evictions = rt.stats().evictions;
  Admin admin(rt);
  for (int i = 0; i < 6; ++i) {
    auto inspected = admin.inspect("NOTES", "cold-" + std::to_string(i));
    REQUIRE(inspected.ok());
    CHECK((*inspected)["live"] == false);
  }
  CHECK(rt.stats().evictions == evictions);  // the operator pushed nothing out
  CHECK(rt.stats().live_instances == 2);
  auto page = admin.list("NOTES", "hot", "", 10);
  REQUIRE(page.ok());
  for (const auto& actor : (*page)["actors"]) CHECK(actor["live"] == true);
}

TEST_CASE("the databases' bytes in /metrics follow writes and deletes without walking the data directory") {
  TempDir dir;
  auto rt = make_runtime(dir.path());
  auto bytes = [&] {
    metrics::TextWriter out;
    rt->write_metrics(out);
    const std::string& text = out.text();
    auto at = text.find("cairn_database_bytes{binding=\"NOTES\"} ");
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + std::string("cairn_database_bytes{binding=\"NOTES\"} ").size()));
  };
  CHECK(bytes() == 0);
  add(*rt, "big", std::string(200'000, 'x'));
  REQUIRE(rt->evict("NOTES", "big").value());  // reported at close whatever the timing
  REQUIRE(testing::eventually([&] { return rt->stats().stopping_instances == 0; }));
  auto grown = bytes();
  CHECK(grown >= 200'000);
  auto file = detail::actor_database(dir.path(), rt->get("NOTES", "big")->id());
  std::error_code ec;
  auto on_disk = std::filesystem::file_size(file, ec) + std::filesystem::file_size(file.string() + "-wal", ec);
  CHECK(grown == doctest::Approx(static_cast<double>(on_disk)));
  Admin admin(*rt);
  REQUIRE(admin.remove("NOTES", "big").ok());
  CHECK(bytes() == 0);
  // A restart counts what is on disk once.
  add(*rt, "kept", "y");
  REQUIRE(rt->evict("NOTES", "kept").value());
  REQUIRE(testing::eventually([&] { return rt->stats().stopping_instances == 0; }));
  auto before = bytes();
  rt.reset();
  rt = make_runtime(dir.path());
  CHECK(bytes() == before);
}
