// The runtime's failure paths under misbehaving actor code: statements after which SQLite
// has ended the batch's transaction, exceptions that are not std::exception, throwing
// callers' callbacks, user SQL aimed at the runtime's tables, and a commit that fails in the
// middle of an alarm wake. The promise under test: no acknowledged write is lost and no
// actor is wedged.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cairn/actor_id.hpp"
#include "cairn/admin.hpp"
#include "cairn/limits.hpp"
#include "cairn/runtime.hpp"
#include "events.hpp"
#include "fault_vfs.hpp"
#include "recording_sink.hpp"
#include "runtime_core.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"
#include "data_layout.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using namespace std::chrono_literals;

namespace {

// Holds the actor inside a "gate" event until open() so that the events sent meanwhile queue
// behind it and share one batch (group commit).
class Gate {
 public:
  void reset() {
    std::lock_guard lock(mutex_);
    promise_ = std::promise<void>();
    future_ = promise_.get_future().share();
    entered_ = std::promise<void>();
    entered_future_ = entered_.get_future().share();
  }
  void open() { promise_.set_value(); }
  void wait_inside() {
    entered_.set_value();
    if (future_.wait_for(cairn::testing::reply_deadline) != std::future_status::ready) {
      throw std::runtime_error("the gate was never opened");
    }
  }
  // Blocks until an event is inside the gate.
  void wait_entered() {
    if (entered_future_.wait_for(cairn::testing::reply_deadline) != std::future_status::ready) {
      throw std::runtime_error("no event entered the gate");
    }
  }

 private:
  std::mutex mutex_;
  std::promise<void> promise_;
  std::shared_future<void> future_;
  std::promise<void> entered_;
  std::shared_future<void> entered_future_;
};
Gate gate;

std::atomic<int> fragile_constructions{0};

class Fragile final : public Actor {
 public:
  explicit Fragile(Context& ctx) : ctx_(ctx) {
    ++fragile_constructions;
    auto& sql = ctx_.sql();
    sql.exec("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY)");
    sql.exec("CREATE TABLE IF NOT EXISTS fired (name TEXT PRIMARY KEY)");
    sql.exec("CREATE TABLE IF NOT EXISTS guarded (n INTEGER)");
    sql.exec(
        "CREATE TRIGGER IF NOT EXISTS no_negative BEFORE INSERT ON guarded WHEN NEW.n < 0 "
        "BEGIN SELECT RAISE(ROLLBACK, 'negative numbers end the transaction'); END");
  }
  Methods methods() override {
    return {
        {"insert", [this](const json& args) -> Result<json> {
           ctx_.sql().exec("INSERT INTO t VALUES (?)", args.at("n").get<std::int64_t>());
           return json{{"ok", true}};
         }},
        {"count", [this](const json&) -> Result<json> {
           return ctx_.sql().exec("SELECT count(*) AS c FROM t").one().to_json()["c"];
         }},
        {"fired", [this](const json&) -> Result<json> {
           return ctx_.sql().exec("SELECT count(*) AS c FROM fired").one().to_json()["c"];
         }},
        // INSERT OR ROLLBACK of a duplicate: SQLite rolls back the whole transaction. The
        // actor catches the error, optionally writes once more, and answers normally.
        {"or_rollback_caught", [this](const json& args) -> Result<json> {
           std::string caught;
           try {
             ctx_.sql().exec("INSERT OR ROLLBACK INTO t VALUES (?)", args.at("n").get<std::int64_t>());
           } catch (const SqlError& e) {
             caught = e.what();
           }
           if (args.contains("then")) {
             try {
               ctx_.sql().exec("INSERT INTO t VALUES (?)", args.at("then").get<std::int64_t>());
             } catch (const SqlError&) {
             }
           }
           return json{{"caught", caught}};
         }},
        {"trigger_rollback_caught", [this](const json&) -> Result<json> {
           try {
             ctx_.sql().exec("INSERT INTO guarded VALUES (-1)");
           } catch (const SqlError&) {
           }
           return json{{"ok", true}};
         }},
        {"gate", [](const json&) -> Result<json> {
           gate.wait_inside();
           return json{{"ok", true}};
         }},
        {"throw_int", [this](const json&) -> Result<json> {
           ctx_.sql().exec("INSERT INTO t VALUES (4242)");
           throw 42;
         }},
        {"set_alarms", [this](const json& args) -> Result<json> {
           auto when = ctx_.now() + std::chrono::milliseconds(args.at("in_ms").get<std::int64_t>());
           for (int i = 0; i < args.at("count").get<int>(); ++i) {
             auto set = ctx_.set_alarm("a" + std::to_string(i), when);
             if (!set) return set.error();
           }
           return json(ctx_.alarms().size());
         }},
        {"runaway", [this](const json&) -> Result<json> {
           try {
             ctx_.sql().exec(
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                 "SELECT count(*) FROM c");
           } catch (const SqlError&) {
             // Caught: the event must fail all the same, and no more SQL may run in it.
             ctx_.sql().exec("INSERT INTO t VALUES (777)");
           }
           return json{{"ok", true}};
         }},
        {"insert_unsigned", [this](const json& args) -> Result<json> {
           ctx_.sql().exec("INSERT INTO t VALUES (?)", args.get<std::uint64_t>());
           return json{{"ok", true}};
         }},
        {"alarm_at_min", [this](const json&) -> Result<json> {
           auto set = ctx_.set_alarm("min", Clock::time_point::min());
           if (!set) return set.error();
           return json(ctx_.alarms().size());
         }},
        {"alarms", [this](const json&) -> Result<json> { return json(ctx_.alarms().size()); }},
        {"sql", [this](const json& args) -> Result<json> {
           ctx_.sql().exec(args.get<std::string>());
           return json{{"ok", true}};
         }},
    };
  }
  void on_alarm(const AlarmInfo& alarm) override {
    ctx_.sql().exec("INSERT OR IGNORE INTO fired VALUES (?)", alarm.name);
  }
  Response fetch(const Request& request) override {
    auto accepted = ctx_.accept_websocket(request, {});
    return accepted ? *accepted : Response::error(accepted.error());
  }
  void on_message(WebSocket&, std::string_view message, bool) override {
    if (message == "gate") {
      gate.wait_inside();
      return;
    }
    ctx_.sql().exec("INSERT INTO t VALUES (NULL)");
  }

 private:
  Context& ctx_;
};

// Keeps nothing: it answers from memory only.
class Stateless final : public Actor {
 public:
  explicit Stateless(Context& ctx) : ctx_(ctx) {}
  Methods methods() override {
    return {
        {"hello", [this](const json&) -> Result<json> { return json(ctx_.id().name()); }},
        {"keep", [this](const json&) -> Result<json> {
           ctx_.sql().exec("CREATE TABLE IF NOT EXISTS kept (x)");
           return json{{"ok", true}};
         }},
        {"drop", [this](const json&) -> Result<json> {
           ctx_.delete_all();
           return json{{"ok", true}};
         }},
    };
  }

 private:
  Context& ctx_;
};

Registry fragile_registry() {
  Registry r;
  r.add<Fragile>("FRAGILE");
  r.add<Stateless>("STATELESS");
  return r;
}

RuntimeOptions options_for(const TempDir& dir, std::shared_ptr<Clock> clock = nullptr) {
  RuntimeOptions o;
  o.data_dir = dir.path();
  o.threads = 2;
  o.idle_timeout = 0ms;
  if (clock) o.clock = std::move(clock);
  return o;
}

std::future<Result<json>> call_async(const Stub& stub, std::string method, json args = {}) {
  auto promise = std::make_shared<std::promise<Result<json>>>();
  auto future = promise->get_future();
  stub.call(std::move(method), std::move(args),
            [promise](Result<json> result) { promise->set_value(std::move(result)); });
  return future;
}

// Runs `culprit` in one batch with an insert of 100 sent just before it: the gate holds the
// actor while both queue. Returns {the insert's answer, the culprit's answer}.
std::pair<Result<json>, Result<json>> in_one_batch(const Stub& stub, std::string culprit, json args) {
  gate.reset();
  auto held = call_async(stub, "gate");
  gate.wait_entered();
  auto insert = call_async(stub, "insert", {{"n", 100}});
  auto bad = call_async(stub, std::move(culprit), std::move(args));
  gate.open();
  CHECK(cairn::testing::wait_for(held).ok());
  return {cairn::testing::wait_for(insert), cairn::testing::wait_for(bad)};
}

}  // namespace

TEST_CASE("a statement that makes SQLite roll back the batch fails every event of that batch") {
  TempDir dir;
  {
    Runtime runtime(fragile_registry(), options_for(dir));
    auto stub = *runtime.get("FRAGILE", "or-rollback");
    REQUIRE(cairn::testing::call(stub, "insert", {{"n", 1}}).ok());
    auto [insert, culprit] = in_one_batch(stub, "or_rollback_caught", {{"n", 1}});
    // The insert of 100 shared a transaction that SQLite ended: it must not be acknowledged.
    REQUIRE(!insert.ok());
    CHECK(insert.error().code == Code::unavailable);
    CHECK(retryable(insert.error().code));
    REQUIRE(!culprit.ok());
    CHECK(culprit.error().code == Code::internal);
    CHECK(culprit.error().message.find("rolled back") != std::string::npos);
    // The recent events say what each caller got: 503 for the insert, 500 for the culprit, and
    // neither committed.
    auto events = (*Admin(runtime).inspect("FRAGILE", "or-rollback"))["recent_events"];
    REQUIRE(events.size() >= 3);
    CHECK(events[0]["what"] == "or_rollback_caught");
    CHECK(events[0]["status"] == 500);
    CHECK(events[0]["batch"] == 0);
    CHECK(events[1]["what"] == "insert");
    CHECK(events[1]["status"] == 503);
    CHECK(events[1]["batch"] == 0);
    // The actor goes on, with what was acknowledged before.
    CHECK(cairn::testing::call(stub, "count").value() == 1);
    CHECK(cairn::testing::call(stub, "insert", {{"n", 2}}).ok());
  }
  Runtime again(fragile_registry(), options_for(dir));
  CHECK(cairn::testing::call(*again.get("FRAGILE", "or-rollback"), "count").value() == 2);
}

TEST_CASE("a batch the actor breaks does not fail the batches committed before it that wait for the disk") {
  cairn::testing::FaultVfs::install();
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "pipelined");
  REQUIRE(cairn::testing::call(stub, "insert", {{"n", 1}}).ok());
  // Syncs of this actor's files now take a second: the next insert commits and waits for its
  // sync while the actor runs on, and the batch after it ends its own transaction.
  cairn::testing::FaultVfs::arm(cairn::testing::Fault::slow_fsync, stub.id().hex());
  auto committed = call_async(stub, "insert", {{"n", 2}});
  REQUIRE(cairn::testing::eventually([&] { return cairn::testing::FaultVfs::failures() > 0; }));
  auto culprit = call_async(stub, "or_rollback_caught", {{"n", 1}});
  auto broken = cairn::testing::wait_for(culprit);
  REQUIRE(!broken.ok());
  CHECK(broken.error().code == Code::internal);
  // The insert of 2 was committed before: it becomes durable and is acknowledged.
  auto answer = cairn::testing::wait_for(committed);
  cairn::testing::FaultVfs::clear();
  CHECK_MESSAGE(answer.ok(), (answer.ok() ? "" : answer.error().message));
  CHECK(cairn::testing::call(stub, "count").value() == 2);
}

TEST_CASE("a sync that fails on the storage pool while the actor is evicted fails the write it covered") {
  // The eviction makes the open batches durable on the actor's thread while the pool's sync of
  // the same WAL is under way. Linux tells the failed writeback to the first fsync only: the
  // pool's, whose result the evicted host no longer reads. The eviction's own sync succeeds,
  // yet the write is not on the disk: it must not be acknowledged.
  cairn::testing::FaultVfs::install();
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "evicted-mid-sync");
  REQUIRE(cairn::testing::call(stub, "insert", {{"n", 1}}).ok());
  cairn::testing::FaultVfs::arm(cairn::testing::Fault::slow_fsync_fails_once, stub.id().hex() + ".sqlite-wal");
  auto pending = call_async(stub, "insert", {{"n", 2}});
  REQUIRE(cairn::testing::eventually([&] { return cairn::testing::FaultVfs::failures() > 0; }));
  REQUIRE(*runtime.evict("FRAGILE", "evicted-mid-sync"));
  auto answer = cairn::testing::wait_for(pending);
  cairn::testing::FaultVfs::clear();
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().code == Code::unavailable);
  // The actor goes on: the next write is made durable and acknowledged.
  CHECK(cairn::testing::call(stub, "insert", {{"n", 3}}).ok());
}

TEST_CASE("an event whose commit then fails to sync shows the 503 its caller got in the recent events") {
  cairn::testing::FaultVfs::install();
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "sync-fails-later");
  REQUIRE(cairn::testing::call(stub, "insert", {{"n", 1}}).ok());
  // The next commit succeeds; the sync it waits for, on the storage pool, fails.
  cairn::testing::FaultVfs::arm(cairn::testing::Fault::fsync, stub.id().hex() + ".sqlite-wal");
  auto answer = cairn::testing::call(stub, "insert", {{"n", 2}});
  cairn::testing::FaultVfs::clear();
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().code == Code::unavailable);
  Admin admin(runtime);
  auto seen = admin.inspect("FRAGILE", "sync-fails-later");
  REQUIRE(seen.ok());
  auto events = (*seen)["recent_events"];
  REQUIRE(events.size() == 2);
  CHECK(events[0]["what"] == "insert");
  CHECK(events[0]["status"] == 503);  // committed, then not made durable
  CHECK(events[0]["batch"] == 1);
  CHECK(events[1]["status"] == 200);
  auto top = admin.top(std::chrono::seconds(60), 10);
  REQUIRE(top.ok());
  REQUIRE((*top)["failing"].size() == 1);
  CHECK((*top)["failing"][0]["errors"] == 1);
  CHECK((*top)["failing"][0]["events"] == 2);
}

TEST_CASE("a trigger's RAISE(ROLLBACK) caught by the actor fails the whole batch") {
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "trigger");
  REQUIRE(cairn::testing::call(stub, "count").ok());
  auto [insert, culprit] = in_one_batch(stub, "trigger_rollback_caught", json::object());
  CHECK(!insert.ok());
  CHECK(!culprit.ok());
  CHECK(cairn::testing::call(stub, "count").value() == 0);
}

TEST_CASE("after SQLite ended the transaction, no later statement of the event runs in autocommit") {
  TempDir dir;
  {
    Runtime runtime(fragile_registry(), options_for(dir));
    auto stub = *runtime.get("FRAGILE", "autocommit");
    REQUIRE(cairn::testing::call(stub, "insert", {{"n", 1}}).ok());
    // Alone in its batch: the duplicate ends the transaction; the insert of 7 that follows
    // must not commit on its own.
    auto culprit = cairn::testing::call(stub, "or_rollback_caught", {{"n", 1}, {"then", 7}});
    CHECK(!culprit.ok());
    CHECK(cairn::testing::call(stub, "count").value() == 1);
  }
  Runtime again(fragile_registry(), options_for(dir));
  CHECK(cairn::testing::call(*again.get("FRAGILE", "autocommit"), "count").value() == 1);
}

TEST_CASE("a method that throws something that is not a std::exception answers 500 and the actor goes on") {
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "throws-int");
  int before = fragile_constructions.load();
  auto thrown = cairn::testing::call(stub, "throw_int");
  REQUIRE(!thrown.ok());
  CHECK(thrown.error().code == Code::internal);
  CHECK(thrown.error().message.find("unknown exception") != std::string::npos);
  for (int i = 0; i < 3; ++i) {
    auto again = cairn::testing::call(stub, "insert", {{"n", i}});
    CHECK(again.ok());
  }
  CHECK(cairn::testing::call(stub, "count").value() == 3);  // the thrown event's write rolled back
  CHECK(fragile_constructions.load() >= before + 2);
}

TEST_CASE("a caller's callback that throws does not wedge the actor or lose the batch") {
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "bad-callback");
  std::atomic<int> called{0};
  stub.call("insert", {{"n", 1}}, [&](Result<json>) {
    ++called;
    throw 7;
  });
  stub.call("insert", {{"n", 2}}, [&](Result<json>) {
    ++called;
    throw std::runtime_error("callback");
  });
  REQUIRE(cairn::testing::eventually([&] { return called.load() == 2; }));
  CHECK(cairn::testing::call(stub, "insert", {{"n", 3}}).ok());
  CHECK(cairn::testing::call(stub, "count").value() == 3);
}

TEST_CASE("user SQL can neither rename the runtime's tables nor name its own after them") {
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "alter");
  REQUIRE(cairn::testing::call(stub, "set_alarms", {{"count", 1}, {"in_ms", 60'000}}).value() == 1);
  for (const char* statement :
       {"ALTER TABLE _cairn_alarms RENAME TO stolen", "ALTER TABLE t RENAME TO _cairn_x",
        "ALTER TABLE t RENAME TO _CAIRN_Y", "ALTER TABLE _cairn_alarms ADD COLUMN x INTEGER",
        "CREATE VIEW _cairn_v AS SELECT 1", "CREATE TABLE _cairn_t (x)",
        "ALTER TABLE _cairn_alarms RENAME COLUMN due TO late"}) {
    CAPTURE(statement);
    auto refused = cairn::testing::call(stub, "sql", statement);
    REQUIRE(!refused.ok());
    CHECK(refused.error().message.find("belongs to the runtime") != std::string::npos);
  }
  CHECK(cairn::testing::call(stub, "alarms").value() == 1);
  CHECK(cairn::testing::call(stub, "insert", {{"n", 5}}).ok());  // t is still t
  // A temp table renamed like the runtime's would shadow it.
  REQUIRE(cairn::testing::call(stub, "sql", "CREATE TEMP TABLE tt (x)").ok());
  auto shadow = cairn::testing::call(stub, "sql", "ALTER TABLE temp.tt RENAME TO _cairn_alarms");
  REQUIRE(!shadow.ok());
  CHECK(shadow.error().message.find("belongs to the runtime") != std::string::npos);
  CHECK(cairn::testing::call(stub, "alarms").value() == 1);
  CHECK(cairn::testing::call(stub, "sql", "ALTER TABLE guarded RENAME TO guarded2").ok());
}

TEST_CASE("a commit that fails in the middle of an alarm wake stops the wake and the alarms run later") {
  cairn::testing::FaultVfs::install();
  TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  Runtime runtime(fragile_registry(), options_for(dir, clock));
  auto stub = *runtime.get("FRAGILE", "wake");
  int alarms = static_cast<int>(limits::max_alarms_per_wake);
  REQUIRE(cairn::testing::call(stub, "set_alarms", {{"count", alarms}, {"in_ms", 1000}}).ok());
  // The gate holds the actor; an insert and the wake then share a batch, which reaches
  // max_events_per_commit inside the wake: that commit's fsync fails.
  gate.reset();
  auto held = call_async(stub, "gate");
  gate.wait_entered();
  auto insert = call_async(stub, "insert", {{"n", 9}});
  clock->advance(2s);
  CHECK(runtime.fire_due_alarms() == 1);
  cairn::testing::FaultVfs::arm(cairn::testing::Fault::fsync, stub.id().hex());
  gate.open();
  CHECK(cairn::testing::wait_for(held).ok());
  auto answered = cairn::testing::wait_for(insert);
  CHECK(!answered.ok());
  // The actor is not wedged: once the disk heals it serves, and every alarm runs once.
  REQUIRE(cairn::testing::eventually([&] { return cairn::testing::FaultVfs::failures() > 0; }));
  cairn::testing::FaultVfs::clear();
  CHECK(cairn::testing::call(stub, "insert", {{"n", 10}}).ok());
  REQUIRE(cairn::testing::eventually([&] {
    clock->advance(1s);
    runtime.fire_due_alarms();
    auto fired = cairn::testing::call(stub, "fired");
    return fired.ok() && fired.value() == alarms;
  }));
  CHECK(cairn::testing::call(stub, "alarms").value() == 0);
}

TEST_CASE("a host that dies anyway is replaced: what it held answers 503 and the next event gets a new host") {
  TempDir dir;
  auto core = std::make_shared<detail::RuntimeCore>(fragile_registry(), options_for(dir));
  auto id = *ActorId::make("FRAGILE", "dies");
  auto send = [&](std::string method, json args) {
    auto promise = std::make_shared<std::promise<Result<json>>>();
    auto future = promise->get_future();
    auto reply = core->replies().add(std::make_shared<PendingReply>(
        Stub::CallCallback([promise](Result<json> r) { promise->set_value(std::move(r)); })));
    core->deliver(id, Event{CallEvent{std::move(method), std::move(args)}, reply});
    return future;
  };
  auto first = send("insert", {{"n", 1}});
  REQUIRE(cairn::testing::wait_for(first).ok());
  gate.reset();
  auto held = send("gate", json::object());
  gate.wait_entered();
  auto queued = send("insert", {{"n", 2}});
  REQUIRE(core->kill_host(id));
  gate.open();
  int acknowledged = 1;
  for (auto* future : {&held, &queued}) {
    auto answer = cairn::testing::wait_for(*future);
    if (answer.ok()) {
      acknowledged += future == &queued;
    } else {
      CHECK(answer.error().code == Code::unavailable);  // retryable, never a hang
    }
  }
  REQUIRE(cairn::testing::eventually([&] { return core->hosts_lost() == 1; }));
  // Not wedged: a new host serves, with every acknowledged write.
  auto count = send("count", json::object());
  auto counted = cairn::testing::wait_for(count);
  REQUIRE(counted.ok());
  CHECK(counted.value() == acknowledged);
  auto later = send("insert", {{"n", 3}});
  CHECK(cairn::testing::wait_for(later).ok());
  core->shutdown();
}

TEST_CASE("an event past its time budget is interrupted, fails with 500, and the actor goes on") {
  TempDir dir;
  auto options = options_for(dir);
  options.event_budget = 300ms;
  Runtime runtime(fragile_registry(), options);
  auto stub = *runtime.get("FRAGILE", "runaway");
  REQUIRE(cairn::testing::call(stub, "insert", {{"n", 1}}).ok());
  auto started = std::chrono::steady_clock::now();
  auto runaway = cairn::testing::call(stub, "runaway");
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(!runaway.ok());
  CHECK(runaway.error().code == Code::internal);
  CHECK(runaway.error().message.find("budget of 300 ms") != std::string::npos);
  CHECK(took < 10s);
  CHECK(cairn::testing::call(stub, "insert", {{"n", 2}}).ok());
  CHECK(cairn::testing::call(stub, "count").value() == 2);  // 777 was never written
}

TEST_CASE("an unsigned parameter above INT64_MAX is refused instead of wrapping") {
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto stub = *runtime.get("FRAGILE", "unsigned");
  CHECK(cairn::testing::call(stub, "insert_unsigned", json(std::uint64_t{9'223'372'036'854'775'807ULL})).ok());
  auto refused = cairn::testing::call(stub, "insert_unsigned", json(std::uint64_t{9'223'372'036'854'775'808ULL}));
  REQUIRE(!refused.ok());
  CHECK(refused.error().message.find("above 9223372036854775807") != std::string::npos);
  CHECK(cairn::testing::call(stub, "count").value() == 1);
}

TEST_CASE("an alarm set at time_point::min() fires at once") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  Runtime runtime(fragile_registry(), options_for(dir, clock));
  auto stub = *runtime.get("FRAGILE", "min-alarm");
  REQUIRE(cairn::testing::call(stub, "alarm_at_min").value() == 1);
  REQUIRE(cairn::testing::eventually([&] {
    runtime.fire_due_alarms();
    auto fired = cairn::testing::call(stub, "fired");
    return fired.ok() && fired.value() == 1;
  }));
  CHECK(cairn::testing::call(stub, "alarms").value() == 0);
}

TEST_CASE("an actor that keeps nothing leaves no file and no name behind when it is evicted") {
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  auto file = [&](const std::string& name) {
    return detail::actor_database(dir.path(), *ActorId::make("STATELESS", name));
  };
  for (const char* name : {"random-1", "random-2"}) {
    REQUIRE(cairn::testing::call(*runtime.get("STATELESS", name), "hello").value() == name);
    REQUIRE(*runtime.evict("STATELESS", name));
  }
  REQUIRE(cairn::testing::call(*runtime.get("STATELESS", "keeper"), "keep").ok());
  REQUIRE(cairn::testing::call(*runtime.get("STATELESS", "dropper"), "keep").ok());
  REQUIRE(cairn::testing::call(*runtime.get("STATELESS", "dropper"), "drop").ok());
  for (const char* name : {"keeper", "dropper"}) REQUIRE(*runtime.evict("STATELESS", name));
  REQUIRE(cairn::testing::eventually([&] { return runtime.stats().live_instances == 0 &&
                                                  runtime.stats().stopping_instances == 0; }));
  CHECK(!std::filesystem::exists(file("random-1")));
  CHECK(!std::filesystem::exists(file("random-1").string() + "-wal"));
  CHECK(!std::filesystem::exists(file("random-2")));
  CHECK(std::filesystem::exists(file("keeper")));
  CHECK(!std::filesystem::exists(file("dropper")));  // delete_all(): nothing left to keep
  Admin admin(runtime);
  auto names = admin.list("STATELESS", {}, {}, 100);
  REQUIRE(names.ok());
  std::vector<std::string> listed;
  for (const auto& entry : names.value()["actors"]) listed.push_back(entry.at("name").get<std::string>());
  CHECK(listed == std::vector<std::string>{"keeper"});
  // Asked again, the forgotten actor starts afresh.
  CHECK(cairn::testing::call(*runtime.get("STATELESS", "random-1"), "hello").value() == "random-1");
}

namespace {
Request upgrade(SocketId socket) {
  Request r = cairn::testing::get("/ws");
  r.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  r.websocket = socket;
  return r;
}
}  // namespace

TEST_CASE("a socket whose actor falls behind is paused, resumed when it catches up, closed 1013 past the queue bound") {
  TempDir dir;
  auto options = options_for(dir);
  options.max_queued_events = limits::max_socket_messages_waiting + 8;
  Runtime runtime(fragile_registry(), options);
  auto stub = *runtime.get("FRAGILE", "flooded");
  auto sink = std::make_shared<cairn::testing::RecordingSink>();
  SocketId socket = runtime.reserve_socket(sink);
  REQUIRE(cairn::testing::fetch(stub, upgrade(socket)).status == 101);
  gate.reset();
  CHECK(runtime.socket_message(socket, "gate", false) == SocketFlow::read_on);
  gate.wait_entered();
  // The actor is held: its messages wait, each counted; at the bound the gateway must pause.
  std::vector<SocketFlow> flows;
  for (std::uint32_t i = 1; i < limits::max_socket_messages_waiting; ++i) {
    flows.push_back(runtime.socket_message(socket, "row", false));
  }
  CHECK(std::count(flows.begin(), flows.end(), SocketFlow::read_on) == static_cast<long>(flows.size()) - 1);
  CHECK(flows.back() == SocketFlow::pause);
  // A second socket of the same actor (a gateway that does not pause it) fills the actor's
  // queue: past max_queued_events its messages are refused and it is closed with 1013.
  auto other = std::make_shared<cairn::testing::RecordingSink>();
  SocketId second = runtime.reserve_socket(other);
  gate.open();  // let the upgrade through, then hold the actor again
  REQUIRE(cairn::testing::fetch(stub, upgrade(second)).status == 101);
  REQUIRE(cairn::testing::eventually([&] { return sink->resumes() == 1; }));  // caught up: resumed once
  gate.reset();
  CHECK(runtime.socket_message(second, "gate", false) == SocketFlow::read_on);
  gate.wait_entered();
  int refused = 0;
  for (std::uint32_t i = 0; i < options.max_queued_events + 4; ++i) {
    refused += runtime.socket_message(second, "row", false) == SocketFlow::refused;
  }
  CHECK(refused > 0);
  CHECK(other->closes() == std::vector<int>(static_cast<std::size_t>(refused), limits::overloaded_close_code));
  gate.open();
  REQUIRE(cairn::testing::eventually([&] {
    auto count = cairn::testing::call(stub, "count");
    return count.ok() && count.value() == static_cast<std::int64_t>(limits::max_socket_messages_waiting - 1 +
                                                                    options.max_queued_events + 4 - refused);
  }));
}

TEST_CASE("instances still closing count against the live cap: a new one waits for a place") {
  TempDir dir;
  auto options = options_for(dir);
  options.max_live_instances = 2;
  Runtime runtime(fragile_registry(), options);
  auto a = *runtime.get("FRAGILE", "cap-a");
  auto b = *runtime.get("FRAGILE", "cap-b");
  auto c = *runtime.get("FRAGILE", "cap-c");
  gate.reset();
  auto held = call_async(a, "gate");  // a is busy, and the least recently used...
  gate.wait_entered();
  REQUIRE(cairn::testing::call(b, "insert", {{"n", 1}}).ok());  // ...once b has been used
  // c needs a place: a is evicted to make it, but a's database stays open until its event
  // ends, so c must not open a third one meanwhile.
  auto started = call_async(c, "insert", {{"n", 2}});
  CHECK(started.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  CHECK(runtime.stats().live_instances + runtime.stats().stopping_instances <= 3);
  gate.open();
  CHECK(cairn::testing::wait_for(held).ok());
  CHECK(cairn::testing::wait_for(started).ok());
  CHECK(runtime.stats().live_instances == 2);
  // Churn over many names keeps at most the cap open and loses nothing.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(cairn::testing::call(*runtime.get("FRAGILE", "churn-" + std::to_string(i)), "insert", {{"n", i}}).ok());
    CHECK(runtime.stats().live_instances <= 2);
  }
  for (int i = 0; i < 20; ++i) {
    CHECK(cairn::testing::call(*runtime.get("FRAGILE", "churn-" + std::to_string(i)), "count").value() == 1);
  }
}

TEST_CASE("a start waiting for a place under the cap is not overtaken by a busy actor") {
  TempDir dir;
  auto options = options_for(dir);
  options.max_live_instances = 1;
  Runtime runtime(fragile_registry(), options);
  auto a = *runtime.get("FRAGILE", "busy-a");
  auto b = *runtime.get("FRAGILE", "waiting-b");
  gate.reset();
  auto held = call_async(a, "gate");
  gate.wait_entered();
  auto b_first = call_async(b, "insert", {{"n", 1}});    // a is evicted for it; b waits
  auto a_again = call_async(a, "insert", {{"n", 2}});    // a has more to do after its close
  gate.open();
  CHECK(cairn::testing::wait_for(held).ok());
  CHECK(cairn::testing::wait_for(b_first).ok());  // b got the place before a took it back
  CHECK(cairn::testing::wait_for(a_again).ok());
  CHECK(runtime.stats().live_instances <= 1);
}

TEST_CASE("a names index that cannot be written or synced fails a new actor's first event, then heals") {
  // A new actor's name must be durable before anything of it is acknowledged (its first sync
  // pays for the record, off the actor's thread): a record that fails fails the event.
  cairn::testing::FaultVfs::install();
  TempDir dir;
  Runtime runtime(fragile_registry(), options_for(dir));
  for (auto fault : {cairn::testing::Fault::write, cairn::testing::Fault::fsync}) {
    std::string name = fault == cairn::testing::Fault::write ? "unnamed-write" : "unnamed-fsync";
    CAPTURE(name);
    auto stub = *runtime.get("FRAGILE", name);
    cairn::testing::FaultVfs::arm(fault, "names.sqlite");
    auto refused = cairn::testing::call(stub, "insert", {{"n", 1}});
    CHECK(cairn::testing::FaultVfs::failures() > 0);
    REQUIRE(!refused.ok());
    CHECK(refused.error().code == Code::unavailable);
    cairn::testing::FaultVfs::clear();
    // Healed: the actor serves, and is listed by name.
    CHECK(cairn::testing::call(stub, "insert", {{"n", 2}}).ok());
    auto names = Admin(runtime).list("FRAGILE", name, {}, 10);
    REQUIRE(names.ok());
    REQUIRE(names.value()["actors"].size() == 1);
    CHECK(names.value()["actors"][0].at("name") == name);
  }
}

TEST_CASE("every directory level a new database needs is owed its fsync until one is done, whoever made it") {
  // A database's first sync fsyncs the parents of its directory levels not yet known durable;
  // a second binding's database in the same new shard must owe the shard directory's entry
  // too, though the first one made it.
  TempDir dir;
  auto core = std::make_shared<detail::RuntimeCore>(fragile_registry(), options_for(dir));
  auto first = *ActorId::make("FRAGILE", "levels-1");
  std::optional<ActorId> second;
  for (int i = 0; !second; ++i) {  // a STATELESS actor in the same shard
    auto candidate = *ActorId::make("STATELESS", "levels-" + std::to_string(i));
    if (candidate.shard() == first.shard()) second = candidate;
  }
  auto shard_dir = core->database_file(first).parent_path().parent_path();
  std::vector<std::filesystem::path> owed_first, owed_second, owed_again;
  core->database_path(first, &owed_first);
  core->database_path(*second, &owed_second);
  CHECK(std::find(owed_first.begin(), owed_first.end(), shard_dir) != owed_first.end());
  CHECK(std::find(owed_second.begin(), owed_second.end(), shard_dir) != owed_second.end());
  CHECK(std::find(owed_second.begin(), owed_second.end(), shard_dir.parent_path()) != owed_second.end());
  core->dirs_durable(owed_second);
  core->database_path(first, &owed_again);  // its binding level is still owed; the rest are paid
  CHECK(owed_again == std::vector<std::filesystem::path>{core->database_file(first).parent_path()});
  core->dirs_durable(owed_again);
  owed_again.clear();
  core->database_path(first, &owed_again);
  CHECK(owed_again.empty());
  core->shutdown();
}
