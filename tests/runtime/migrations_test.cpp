// Sql::migrate: a fresh database gets every step, an older one the steps it lacks, a newer
// one is refused with nothing changed, a failing step undoes every step of that migration and
// the instance does not start; the admin API shows the version and the history.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>

#include "cairn/admin.hpp"
#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using json = nlohmann::json;

namespace {

// Runs `steps` in its constructor; "tables" lists the user's tables, "log" the steps that ran.
class Versioned final : public Actor {
 public:
  Versioned(Context& ctx, const std::vector<Migration>& steps) : ctx_(ctx) { from_ = ctx_.sql().migrate(steps); }
  Methods methods() override {
    return {
        {"tables", [this](const json&) -> Result<json> {
           json names = json::array();
           for (const auto& row : ctx_.sql().exec("SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                                                  "name NOT LIKE '\\_cairn\\_%' ESCAPE '\\' ORDER BY name")) {
             names.push_back(std::get<std::string>(row["name"]));
           }
           return names;
         }},
        {"log", [this](const json&) -> Result<json> {
           json out = json::array();
           for (const auto& row : ctx_.sql().exec("SELECT step FROM log ORDER BY rowid")) {
             out.push_back(std::get<std::string>(row["step"]));
           }
           return out;
         }},
        {"from", [this](const json&) -> Result<json> { return json(from_); }},
    };
  }

 private:
  Context& ctx_;
  std::int64_t from_ = 0;
};

std::vector<Migration> steps(int count, int failing = 0) {
  std::vector<Migration> out{
      {"log", "CREATE TABLE log (step TEXT NOT NULL); INSERT INTO log VALUES ('1')"},
      {"notes", [](Sql& sql) {
         sql.exec("CREATE TABLE notes (text TEXT)");
         sql.exec("INSERT INTO log VALUES ('2')");
       }},
      {"tags", "CREATE TABLE tags (name TEXT); INSERT INTO log VALUES ('3')"},
  };
  out.resize(static_cast<std::size_t>(count), Migration{"unused", ""});
  if (failing > 0) {
    out[static_cast<std::size_t>(failing - 1)] = Migration{"breaks", [](Sql& sql) {
                                                              sql.exec("CREATE TABLE half_made (x)");
                                                              throw std::runtime_error("step refused");
                                                            }};
  }
  return out;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<Runtime> runtime;
  void start(std::vector<Migration> code) {
    runtime.reset();
    Registry registry;
    registry.add("V", [code = std::move(code)](Context& ctx) { return std::make_unique<Versioned>(ctx, code); });
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    runtime = std::make_unique<Runtime>(std::move(registry), options);
  }
  Result<json> call(const std::string& method) { return testing::call(*runtime->get("V", "a"), method); }
  json facts() { return *Admin(*runtime).inspect("V", "a"); }
};

}  // namespace

TEST_CASE("a fresh database gets every step and the admin API shows its version and history") {
  Fixture f;
  f.start(steps(3));
  CHECK(f.call("from").value() == 0);
  CHECK(f.call("log").value() == json{"1", "2", "3"});
  auto facts = f.facts();
  CHECK(facts["schema_version"] == 3);
  REQUIRE(facts["migrations"].size() == 3);
  CHECK(facts["migrations"][1]["name"] == "notes");
  CHECK(facts["migrations"][1]["version"] == 2);
  CHECK(facts["migrations"][1]["applied_ms"].get<std::int64_t>() > 0);
  // A restart runs nothing again.
  f.start(steps(3));
  CHECK(f.call("from").value() == 3);
  CHECK(f.call("log").value() == json{"1", "2", "3"});
}

TEST_CASE("an older database gets only the steps it lacks, from each older version") {
  for (int old = 0; old <= 2; ++old) {
    Fixture f;
    if (old > 0) {
      f.start(steps(old));
      REQUIRE(f.call("from").value() == 0);
    }
    f.start(steps(3));
    CAPTURE(old);
    CHECK(f.call("from").value() == old);
    CHECK(f.call("log").value() == json{"1", "2", "3"});
    CHECK(f.facts()["schema_version"] == 3);
  }
}

TEST_CASE("a database newer than the code is refused and nothing is changed") {
  Fixture f;
  f.start(steps(3));
  REQUIRE(f.call("log").ok());
  f.start(steps(2));  // an older deployment of the class
  auto refused = f.call("log");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Code::internal);
  CHECK(refused.error().message.find("schema is at version 3, newer than the 2 migration steps") != std::string::npos);
  CHECK(f.call("tables").error().code == Code::internal);  // no event runs on it
  CHECK(f.facts()["schema_version"] == 3);
  f.start(steps(3));  // the newer code back
  CHECK(f.call("log").value() == json{"1", "2", "3"});
}

TEST_CASE("a failing step undoes the migration and the instance does not start until the code is fixed") {
  Fixture f;
  f.start(steps(1));
  REQUIRE(f.call("log").ok());
  f.start(steps(3, 2));  // step 2 creates a table, then throws
  auto failed = f.call("log");
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == Code::internal);
  CHECK(failed.error().message.find("migration step 2 ('breaks') failed: step refused") != std::string::npos);
  auto facts = f.facts();
  CHECK(facts["schema_version"] == 1);
  for (const auto& table : facts["tables"]) CHECK(table["name"] != "half_made");
  f.start(steps(3));
  CHECK(f.call("from").value() == 1);
  CHECK(f.call("log").value() == json{"1", "2", "3"});
}

TEST_CASE("a step cannot touch the runtime's history of the schema") {
  Fixture f;
  f.start({{"sneaky", "CREATE TABLE t (x); DELETE FROM _cairn_migrations"}});
  auto refused = f.call("tables");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("_cairn_") != std::string::npos);
  CHECK(f.facts()["schema_version"] == 0);
}
