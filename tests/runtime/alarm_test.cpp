// Alarms: transactional set and delete, firing by an injectable clock, retries with backoff,
// evicted instances, restarts (the index and the actor's own table), delete_all().
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <atomic>
#include <map>
#include <mutex>

#include "cairn/limits.hpp"
#include "cairn/runtime.hpp"
#include "recording_sink.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using namespace std::chrono_literals;

namespace {

std::atomic<int> timer_constructions{0};

// Every on_alarm attempt (committed or not), and how many more times a name should throw.
struct Attempts {
  std::mutex mutex;
  std::vector<json> log;
  std::map<std::string, int> throws;  // name -> remaining throws (-1: always)

  void clear() {
    std::lock_guard lock(mutex);
    log.clear();
    throws.clear();
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return log.size();
  }
  json at(std::size_t i) {
    std::lock_guard lock(mutex);
    return log.at(i);
  }
} attempts;

std::int64_t ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_ms(std::int64_t v) { return Clock::time_point{std::chrono::milliseconds(v)}; }

class Timer final : public Actor {
 public:
  explicit Timer(Context& ctx) : ctx_(ctx) {
    ++timer_constructions;
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS fired (name TEXT, retry INTEGER, at INTEGER)");
  }
  Methods methods() override {
    return {
        // {"name": "x" or absent (unnamed), "at": ms, "throw": bool}
        {"set", [this](const json& args) -> Result<json> {
           auto at = from_ms(args.at("at").get<std::int64_t>());
           auto set = args.contains("name") ? ctx_.set_alarm(args["name"].get<std::string>(), at)
                                            : ctx_.set_alarm(at);
           if (!set) return set.error();
           if (args.value("throw", false)) throw std::runtime_error("after set_alarm");
           return json(true);
         }},
        {"delete", [this](const json& args) -> Result<json> {
           if (args.is_object() && args.value("throw", false)) {
             (void)ctx_.delete_alarm(args.at("name").get<std::string>());
             throw std::runtime_error("after delete_alarm");
           }
           return json(args.is_object() && args.contains("name") ? ctx_.delete_alarm(args["name"].get<std::string>())
                                             : ctx_.delete_alarm());
         }},
        {"alarms", [this](const json&) -> Result<json> {
           json out = json::object();
           for (const auto& alarm : ctx_.alarms()) out[alarm.name] = ms(alarm.when);
           return out;
         }},
        {"unnamed", [this](const json&) -> Result<json> {
           auto at = ctx_.alarm();
           return at ? json(ms(*at)) : json(nullptr);
         }},
        {"fired", [this](const json&) -> Result<json> {
           json out = json::array();
           for (const auto& row : ctx_.sql().exec("SELECT name, retry, at FROM fired ORDER BY rowid")) {
             out.push_back(row.to_json());
           }
           return out;
         }},
        {"note", [this](const json&) -> Result<json> {
           ctx_.sql().exec("CREATE TABLE IF NOT EXISTS notes (what TEXT)");
           ctx_.sql().exec("INSERT INTO notes VALUES ('x')");
           return json(ctx_.sql().exec("SELECT count(*) AS n FROM notes").one().to_json()["n"]);
         }},
        {"tables", [this](const json&) -> Result<json> {
           json out = json::array();
           for (const auto& row : ctx_.sql().exec("PRAGMA table_list")) {
             out.push_back(std::get<std::string>(row["name"]));
           }
           return out;
         }},
        {"deleteAll", [this](const json& args) -> Result<json> {
           ctx_.delete_all();
           if (args.is_object() && args.value("throw", false)) throw std::runtime_error("after delete_all");
           return json(true);
         }},
        {"peek", [this](const json&) -> Result<json> {
           ctx_.sql().exec("SELECT * FROM _cairn_alarms");
           return json(true);
         }},
    };
  }
  Response fetch(const Request& request) override {
    auto accepted = ctx_.accept_websocket(request);
    return accepted ? *accepted : Response::error(accepted.error());
  }
  void on_alarm(const AlarmInfo& alarm) override {
    bool fail = false;
    {
      std::lock_guard lock(attempts.mutex);
      attempts.log.push_back({{"name", alarm.name},
                              {"retry", alarm.retry_count},
                              {"is_retry", alarm.is_retry},
                              {"at", ms(ctx_.now())}});
      auto it = attempts.throws.find(alarm.name);
      if (it != attempts.throws.end() && it->second != 0) {
        fail = true;
        if (it->second > 0) --it->second;
      }
    }
    ctx_.sql().exec("INSERT INTO fired VALUES (?, ?, ?)", alarm.name, alarm.retry_count, ms(ctx_.now()));
    // A periodic alarm re-arms itself; the runtime must not delete the new one.
    if (alarm.name == "tick") (void)ctx_.set_alarm("tick", ctx_.now() + 1s);
    if (fail) throw std::runtime_error("on_alarm failed on purpose");
  }

 private:
  Context& ctx_;
};

struct Fixture {
  TempDir dir;
  std::shared_ptr<ManualClock> clock =
      std::make_shared<ManualClock>(Clock::time_point{std::chrono::hours(24 * 365 * 50)});
  std::unique_ptr<Runtime> runtime;

  Fixture() {
    attempts.clear();
    start();
  }
  void start() {
    Registry registry;
    registry.add<Timer>("TIMER");
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.clock = clock;
    options.idle_timeout = 0s;
    runtime = std::make_unique<Runtime>(std::move(registry), options);
  }
  void restart() {
    runtime.reset();
    start();
  }
  Stub timer(const std::string& name = "t") { return *runtime->get("TIMER", name); }
  json call(const std::string& method, json args = {}, const std::string& name = "t") {
    auto result = testing::call(timer(name), method, std::move(args));
    REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
    return *result;
  }
  std::int64_t now_ms() { return ms(clock->now()); }
  // Moves the clock to `at_ms` and lets the runtime fire what fell due.
  void advance_to(std::int64_t at_ms) {
    clock->advance(std::chrono::milliseconds(at_ms - now_ms()));
    runtime->fire_due_alarms();
  }
  bool attempted(std::size_t n) { return testing::eventually([&] { return attempts.count() >= n; }); }
  // The TIMER actor's database file (the runtime stopped), or "" if there is none.
  std::filesystem::path timer_database() const {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path() / "_shards")) {
      if (entry.path().extension() == ".sqlite" && entry.path().parent_path().filename() == "TIMER") return entry.path();
    }
    return {};
  }
};

}  // namespace

TEST_CASE("an alarm set in a committed event fires once, at its time, and is then gone") {
  Fixture f;
  auto due = f.now_ms() + 10'000;
  f.call("set", {{"name", "a"}, {"at", due}});
  CHECK(f.call("alarms") == json{{"a", due}});
  CHECK(f.runtime->stats().actors_with_alarms == 1);

  f.advance_to(due - 1);
  CHECK(f.runtime->fire_due_alarms() == 0);  // not due yet: nothing is told
  f.advance_to(due);
  REQUIRE(f.attempted(1));
  CHECK(attempts.at(0) == json{{"name", "a"}, {"retry", 0}, {"is_retry", false}, {"at", due}});
  CHECK(f.call("alarms") == json::object());
  CHECK(f.call("fired").size() == 1);
  CHECK(testing::eventually([&] { return f.runtime->stats().actors_with_alarms == 0; }));
  f.advance_to(due + 3'600'000);
  CHECK(f.runtime->fire_due_alarms() == 0);
  CHECK(f.call("fired").size() == 1);
  CHECK(attempts.count() == 1);
}

TEST_CASE("an alarm set in an event that throws never fires, a delete that throws deletes none") {
  Fixture f;
  auto due = f.now_ms() + 1'000;
  CHECK_FALSE(testing::call(f.timer(), "set", {{"name", "rolled-back"}, {"at", due}, {"throw", true}}).ok());
  f.call("set", {{"name", "kept"}, {"at", due}});
  CHECK_FALSE(testing::call(f.timer(), "delete", {{"name", "kept"}, {"throw", true}}).ok());
  CHECK(f.call("alarms") == json{{"kept", due}});
  f.advance_to(due + 60'000);
  REQUIRE(f.attempted(1));
  CHECK(f.call("fired") == json::array({{{"name", "kept"}, {"retry", 0}, {"at", due + 60'000}}}));
  CHECK(attempts.count() == 1);
}

TEST_CASE("the unnamed alarm is Durable Objects' single alarm, names are checked") {
  Fixture f;
  CHECK(f.call("unnamed").is_null());
  auto due = f.now_ms() + 5'000;
  f.call("set", {{"at", due}});
  f.call("set", {{"name", "other"}, {"at", due + 1}});
  CHECK(f.call("unnamed") == due);
  f.call("set", {{"at", due + 2'000}});  // moves it
  CHECK(f.call("alarms") == json{{"", due + 2'000}, {"other", due + 1}});
  CHECK(f.call("delete") == true);
  CHECK(f.call("delete") == false);
  CHECK(f.call("alarms") == json{{"other", due + 1}});

  auto empty = testing::call(f.timer(), "set", {{"name", ""}, {"at", due}});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().code == Code::invalid_argument);
  auto long_name = testing::call(
      f.timer(), "set", {{"name", std::string(limits::max_alarm_name_bytes + 1, 'x')}, {"at", due}});
  REQUIRE_FALSE(long_name.ok());
  CHECK(long_name.error().message.find(std::to_string(limits::max_alarm_name_bytes)) != std::string::npos);
  // The runtime's table is not the actor's to read.
  auto peek = testing::call(f.timer(), "peek");
  REQUIRE_FALSE(peek.ok());
  CHECK(peek.error().message.find("_cairn_alarms") != std::string::npos);
}

TEST_CASE("a throwing on_alarm is retried with backoff (2 s doubling, jitter) until it succeeds") {
  Fixture f;
  attempts.throws["flaky"] = 2;
  auto due = f.now_ms() + 1'000;
  f.call("set", {{"name", "flaky"}, {"at", due}});
  f.advance_to(due);
  REQUIRE(f.attempted(1));
  auto failed_at = due;
  for (int retry = 1; retry <= 2; ++retry) {
    // The retry is due 2 s * 2^(retry-1), plus up to a quarter more, after the failure.
    auto next = f.call("alarms").at("flaky").get<std::int64_t>();
    auto base = 2'000LL << (retry - 1);
    CHECK(next >= failed_at + base);
    CHECK(next <= failed_at + base + base / 4);
    f.advance_to(next - 1);
    CHECK(f.runtime->fire_due_alarms() == 0);
    f.advance_to(next);
    REQUIRE(f.attempted(static_cast<std::size_t>(retry) + 1));
    CHECK(attempts.at(static_cast<std::size_t>(retry))["retry"] == retry);
    CHECK(attempts.at(static_cast<std::size_t>(retry))["is_retry"] == true);
    failed_at = next;
  }
  // The third attempt succeeded: committed once, alarm gone.
  CHECK(f.call("fired") == json::array({{{"name", "flaky"}, {"retry", 2}, {"at", failed_at}}}));
  CHECK(f.call("alarms") == json::object());
}

TEST_CASE("an alarm whose handler always throws is dropped after the last retry") {
  Fixture f;
  attempts.throws["broken"] = -1;
  auto due = f.now_ms() + 1'000;
  f.call("set", {{"name", "broken"}, {"at", due}});
  f.advance_to(due);
  for (int attempt = 1; attempt <= limits::alarm_max_retries; ++attempt) {
    REQUIRE(f.attempted(static_cast<std::size_t>(attempt)));
    auto alarms = f.call("alarms");
    REQUIRE(alarms.contains("broken"));
    f.advance_to(alarms["broken"].get<std::int64_t>());
  }
  REQUIRE(f.attempted(static_cast<std::size_t>(limits::alarm_max_retries) + 1));
  CHECK(f.call("alarms") == json::object());
  CHECK(f.call("fired") == json::array());
  CHECK(testing::eventually([&] { return f.runtime->stats().actors_with_alarms == 0; }));
  f.advance_to(f.now_ms() + 3'600'000);
  CHECK(attempts.count() == static_cast<std::size_t>(limits::alarm_max_retries) + 1);
}

TEST_CASE("an alarm deleted or re-set while a retry is pending is not clobbered by the retry") {
  Fixture f;
  attempts.throws["x"] = -1;
  attempts.throws["y"] = -1;
  auto due = f.now_ms() + 1'000;
  f.call("set", {{"name", "x"}, {"at", due}});
  f.call("set", {{"name", "y"}, {"at", due}});
  f.advance_to(due);
  REQUIRE(f.attempted(2));
  CHECK(f.call("delete", {{"name", "x"}}) == true);
  auto later = f.now_ms() + 600'000;
  attempts.throws.erase("y");
  f.call("set", {{"name", "y"}, {"at", later}});
  f.advance_to(f.now_ms() + 10'000);  // past any first retry
  CHECK(f.call("alarms") == json{{"y", later}});
  CHECK(attempts.count() == 2);
  f.advance_to(later);
  REQUIRE(f.attempted(3));
  CHECK(attempts.at(2) == json{{"name", "y"}, {"retry", 0}, {"is_retry", false}, {"at", later}});
}

TEST_CASE("a handler that sets its own alarm again re-arms it") {
  Fixture f;
  auto due = f.now_ms() + 1'000;
  f.call("set", {{"name", "tick"}, {"at", due}});
  for (int i = 0; i < 3; ++i) {
    f.advance_to(due + i * 1'000);
    REQUIRE(f.attempted(static_cast<std::size_t>(i) + 1));
    CHECK(testing::eventually([&] {
      return f.call("alarms") == json{{"tick", due + (i + 1) * 1'000}};
    }));
  }
}

TEST_CASE("an alarm of an evicted instance re-creates it and fires") {
  Fixture f;
  auto due = f.now_ms() + 5'000;
  f.call("set", {{"name", "wake"}, {"at", due}});
  REQUIRE(f.runtime->evict("TIMER", "t").value());
  REQUIRE(testing::eventually([&] { return f.runtime->stats().live_instances == 0; }));
  int before = timer_constructions.load();
  f.advance_to(due);
  REQUIRE(f.attempted(1));
  CHECK(timer_constructions.load() == before + 1);
  CHECK(f.call("fired").size() == 1);
}

TEST_CASE("alarms survive a restart, those that fell due while stopped fire right after start") {
  Fixture f;
  auto due = f.now_ms() + 5'000;
  f.call("set", {{"name", "early"}, {"at", due}}, "a");
  f.call("set", {{"name", "late"}, {"at", due + 3'600'000}}, "b");
  f.restart();
  CHECK(std::filesystem::exists(f.dir.path() / "_cairn" / "alarms.sqlite"));
  CHECK(f.runtime->stats().actors_with_alarms == 2);  // from the index, no database opened
  CHECK(f.runtime->stats().live_instances == 0);
  f.runtime.reset();
  f.clock->advance(60s);  // "a" fell due while the server was down
  f.start();
  // The scheduler runs at start-up by itself: nobody calls fire_due_alarms() here.
  REQUIRE(f.attempted(1));
  CHECK(attempts.at(0)["name"] == "early");
  CHECK(f.call("fired", {}, "a").size() == 1);
  CHECK(f.call("alarms", {}, "b") == json{{"late", due + 3'600'000}});
}

TEST_CASE("the actor's database is the truth when the index disagrees") {
  Fixture f;
  auto due = f.now_ms() + 5'000;
  f.call("set", {{"name", "gone"}, {"at", due}});
  f.runtime.reset();
  // Remove the alarm behind the index's back: the index still says it is due.
  sqlite3* db = nullptr;
  auto file = f.timer_database();
  REQUIRE(!file.empty());
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM _cairn_alarms", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  f.clock->advance(60s);
  f.start();
  CHECK(f.runtime->stats().actors_with_alarms == 1);
  f.runtime->fire_due_alarms();
  // The woken instance finds nothing due and tells the index so.
  CHECK(testing::eventually([&] { return f.runtime->stats().actors_with_alarms == 0; }));
  CHECK(attempts.count() == 0);
}

TEST_CASE("an alarm table from before alarms carried their trace fires and takes new alarms") {
  Fixture f;
  auto due = f.now_ms() + 5'000;
  f.call("set", {{"name", "old"}, {"at", due}});
  f.runtime.reset();
  // The table as cairn made it before: no request_id, no traceparent.
  sqlite3* db = nullptr;
  auto file = f.timer_database();
  REQUIRE(!file.empty());
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "CREATE TABLE old_alarms (name TEXT PRIMARY KEY, due INTEGER NOT NULL, "
                       "retries INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
                       "INSERT INTO old_alarms SELECT name, due, retries FROM _cairn_alarms;"
                       "DROP TABLE _cairn_alarms; ALTER TABLE old_alarms RENAME TO _cairn_alarms;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  f.clock->advance(60s);
  f.start();
  REQUIRE(f.attempted(1));
  CHECK(attempts.at(0)["name"] == "old");
  // Setting one on the old table works too (the columns are added), and it fires.
  f.call("set", {{"name", "new"}, {"at", f.now_ms() + 1'000}});
  CHECK(f.call("alarms").size() == 1);
  f.advance_to(f.now_ms() + 2'000);
  REQUIRE(f.attempted(2));
  CHECK(attempts.at(1)["name"] == "new");
}

TEST_CASE("delete_all removes the data, the alarms and the sockets, in the event's transaction") {
  Fixture f;
  auto sink = std::make_shared<testing::RecordingSink>();
  Request request = testing::get("/ws");
  request.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  request.websocket = f.runtime->reserve_socket(sink);
  REQUIRE(testing::fetch(f.timer(), request).status == 101);
  CHECK(f.call("note") == 1);
  f.call("set", {{"name", "a"}, {"at", f.now_ms() + 5'000}});

  // Rolled back: nothing is deleted, no socket closed.
  CHECK_FALSE(testing::call(f.timer(), "deleteAll", {{"throw", true}}).ok());
  CHECK(f.call("note") == 2);
  CHECK(f.call("alarms").size() == 1);
  CHECK(sink->closes().empty());

  int before = timer_constructions.load();
  f.call("deleteAll");
  CHECK(testing::eventually([&] { return sink->closes() == std::vector<int>{1000}; }));
  CHECK(testing::eventually([&] { return f.runtime->stats().actors_with_alarms == 0; }));
  CHECK(f.call("alarms") == json::object());
  CHECK(timer_constructions.load() == before + 1);  // a fresh instance for the next event
  // Only what the new constructor made is there.
  auto tables = f.call("tables");
  CHECK(std::find(tables.begin(), tables.end(), "notes") == tables.end());
  CHECK(f.call("note") == 1);
  f.advance_to(f.now_ms() + 60'000);
  CHECK(attempts.count() == 0);
}
