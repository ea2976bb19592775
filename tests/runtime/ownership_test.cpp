// Cluster mode's gate in the runtime (cairn/ownership.hpp), with an ownership the test sets:
// an instance runs only where its shard is owned, and a batch whose shard was lost (fenced,
// moved) while it ran lets nothing out.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "recording_sink.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;

namespace {

class TestOwnership final : public Ownership {
 public:
  std::optional<std::int64_t> epoch(unsigned shard) const override {
    auto e = epochs_[shard].load();
    if (e == 0) return std::nullopt;
    return e;
  }
  void set(unsigned shard, std::int64_t epoch) { epochs_[shard].store(epoch); }
  bool admits(unsigned shard) const override { return !closed_[shard].load(); }
  void close(unsigned shard, bool closed) { closed_[shard].store(closed); }

 private:
  std::array<std::atomic<std::int64_t>, ActorId::shard_count> epochs_{};
  std::array<std::atomic<bool>, ActorId::shard_count> closed_{};
};

std::shared_ptr<TestOwnership> ownership = std::make_shared<TestOwnership>();
std::atomic<int> constructions{0};

// A room: "add" writes a row and tells every socket; "add_and_lose" does the same after the
// test's ownership lost the actor's shard (as if the node fenced itself mid-event).
class Room final : public Actor {
 public:
  explicit Room(Context& ctx) : ctx_(ctx) {
    ++constructions;
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS log (n INTEGER)");
  }
  Methods methods() override {
    auto add = [this] {
      ctx_.sql().exec("INSERT INTO log VALUES (1)");
      auto count = ctx_.sql().exec("SELECT count(*) AS c FROM log").one().to_json()["c"];
      for (auto& socket : ctx_.websockets()) socket.send("added " + count.dump());
      return json(count);
    };
    return {{"add", [add](const json&) -> Result<json> { return add(); }},
            {"add_and_lose", [this, add](const json&) -> Result<json> {
               ownership->set(ctx_.id().shard(), 0);
               return add();
             }},
            {"count", [this](const json&) -> Result<json> {
               return ctx_.sql().exec("SELECT count(*) AS c FROM log").one().to_json()["c"];
             }},
            {"slow_add", [add](const json&) -> Result<json> {
               std::this_thread::sleep_for(std::chrono::milliseconds(300));
               return add();
             }},
            {"alarm_in", [this](const json& ms) -> Result<json> {
               auto set = ctx_.set_alarm(ctx_.now() + std::chrono::milliseconds(ms.get<int>()));
               if (!set) return set.error();
               return json(true);
             }},
            {"add_and_move", [this, add](const json&) -> Result<json> {
               // Away and back: owned again, at a later epoch.
               auto now = ownership->epoch(ctx_.id().shard()).value_or(0);
               ownership->set(ctx_.id().shard(), now + 1);
               return add();
             }}};
  }
  void on_alarm(const AlarmInfo&) override { ctx_.sql().exec("INSERT INTO log VALUES (2)"); }
  Response fetch(const Request& request) override {
    auto accepted = ctx_.accept_websocket(request, {});
    if (!accepted) return Response::error(accepted.error());
    return *accepted;
  }

 private:
  Context& ctx_;
};

struct Fixture {
  TempDir dir;
  std::unique_ptr<Runtime> runtime;
  explicit Fixture(std::shared_ptr<TestOwnership> owner = ownership) {
    Registry registry;
    registry.add<Room>("ROOM");
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.ownership = std::move(owner);
    runtime = std::make_unique<Runtime>(std::move(registry), options);
  }
  Stub room(const std::string& name) { return *runtime->get("ROOM", name); }
};

// Two names in different shards.
std::pair<std::string, std::string> two_shards() {
  std::string a = "room-a", b;
  for (int i = 0;; ++i) {
    b = "room-b" + std::to_string(i);
    if (ActorId::make("ROOM", b)->shard() != ActorId::make("ROOM", a)->shard()) return {a, b};
  }
}

unsigned shard_of(const std::string& name) { return ActorId::make("ROOM", name)->shard(); }

}  // namespace

TEST_CASE("a node runs only the actors of the shards it owns") {
  Fixture f;
  auto [mine, theirs] = two_shards();
  ownership->set(shard_of(mine), 7);
  ownership->set(shard_of(theirs), 0);
  CHECK(testing::call(f.room(mine), "add").value() == 1);
  auto refused = testing::call(f.room(theirs), "add");
  REQUIRE(!refused.ok());
  CHECK(refused.error().code == Code::unavailable);
  CHECK(refused.error().message.find("shard " + std::to_string(shard_of(theirs))) != std::string::npos);
  ownership->set(shard_of(theirs), 9);  // the shard came to this node
  CHECK(testing::call(f.room(theirs), "add").value() == 1);
}

TEST_CASE("a batch whose shard was lost while it ran lets nothing out, and the next instance starts afresh") {
  Fixture f;
  std::string name = "fenced-room";
  ownership->set(shard_of(name), 3);
  auto stub = f.room(name);
  auto sink = std::make_shared<testing::RecordingSink>();
  Request upgrade = testing::get("/ws");
  upgrade.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  upgrade.websocket = f.runtime->reserve_socket(sink);
  REQUIRE(testing::fetch(stub, upgrade).status == 101);
  REQUIRE(testing::call(stub, "add").value() == 1);
  REQUIRE(testing::eventually([&] { return sink->messages().size() == 1; }));
  int before = constructions.load();

  auto lost = testing::call(stub, "add_and_lose");
  REQUIRE(!lost.ok());
  CHECK(lost.error().code == Code::unavailable);
  CHECK(lost.error().message.find("unknown") != std::string::npos);  // the write may have happened

  // While not owned, nothing runs.
  CHECK(testing::call(stub, "add").error().code == Code::unavailable);
  // Owned again at a new epoch: a new instance (the old one's memory may be stale).
  ownership->set(shard_of(name), 4);
  auto again = testing::call(stub, "add");
  REQUIRE(again.ok());
  CHECK(constructions.load() == before + 1);
  // The socket heard the first and the last booking, in order, and never the lost batch's
  // broadcast ("added 2"), although its row may be on disk (then the last one is "added 3").
  REQUIRE(testing::eventually([&] { return sink->messages().size() >= 2; }));
  auto heard = sink->messages();
  REQUIRE(heard.size() == 2);
  CHECK(heard[0] == "added 1");
  CHECK(heard[1] == "added " + again.value().dump());
  CHECK(again.value().get<int>() >= 2);
}

TEST_CASE("a batch whose shard moved to a new epoch while it ran lets nothing out") {
  Fixture f;
  std::string name = "moved-room";
  ownership->set(shard_of(name), 10);
  auto stub = f.room(name);
  REQUIRE(testing::call(stub, "add").ok());
  int before = constructions.load();
  auto stale = testing::call(stub, "add_and_move");
  REQUIRE(!stale.ok());
  CHECK(stale.error().code == Code::unavailable);
  CHECK(testing::call(stub, "add").ok());  // under epoch 11, by a fresh instance
  CHECK(constructions.load() == before + 1);
  // An epoch change between events: the next event gets a fresh instance, not the old one.
  ownership->set(shard_of(name), 12);
  CHECK(testing::call(stub, "add").ok());
  CHECK(constructions.load() == before + 2);
}

TEST_CASE("evict_shard evicts the live instances of one shard only") {
  Fixture f;
  auto [a, b] = two_shards();
  ownership->set(shard_of(a), 1);
  ownership->set(shard_of(b), 1);
  REQUIRE(testing::call(f.room(a), "add").ok());
  REQUIRE(testing::call(f.room(b), "add").ok());
  CHECK(f.runtime->evict_shard(shard_of(a)) == 1);
  REQUIRE(testing::eventually([&] { return f.runtime->stats().live_instances == 1; }));
  CHECK(f.runtime->evict_shard(shard_of(a)) == 0);
}

TEST_CASE("a shard handed to another runtime: closed, drained, its files and index rows moved, served there with its alarm") {
  auto here = std::make_shared<TestOwnership>();
  auto there = std::make_shared<TestOwnership>();
  Fixture a(here);
  Fixture b(there);
  std::string name = "moving-room";
  unsigned shard = shard_of(name);
  here->set(shard, 5);
  auto stub = a.room(name);
  REQUIRE(testing::call(stub, "add").value() == 1);
  REQUIRE(testing::call(stub, "alarm_in", 2500).ok());
  auto sink = std::make_shared<testing::RecordingSink>();
  Request upgrade = testing::get("/ws");
  upgrade.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  upgrade.websocket = a.runtime->reserve_socket(sink);
  REQUIRE(testing::fetch(stub, upgrade).status == 101);

  // An event already queued when the shard closes still runs and is answered.
  auto queued = std::async(std::launch::async, [&] { return testing::call(stub, "slow_add"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  here->close(shard, true);
  auto refused = testing::call(stub, "add");
  REQUIRE(!refused.ok());
  CHECK(refused.error().code == Code::unavailable);
  CHECK(refused.error().message.find("moving") != std::string::npos);
  CHECK(queued.get().value() == 2);
  a.runtime->evict_shard(shard);
  REQUIRE(testing::eventually([&] { return a.runtime->shard_instances(shard) == 0; }));
  CHECK(testing::call(stub, "add").error().code == Code::unavailable);  // still closed, nothing starts
  CHECK(a.runtime->shard_instances(shard) == 0);

  // The rows travel with the files.
  auto rows = a.runtime->shard_indexes(shard);
  REQUIRE(rows["names"].size() == 1);
  CHECK(rows["names"][0]["name"] == name);
  REQUIRE(rows["alarms"].size() == 1);
  std::filesystem::create_directories(b.runtime->shard_dir(shard).parent_path());
  std::filesystem::copy(a.runtime->shard_dir(shard), b.runtime->shard_dir(shard),
                        std::filesystem::copy_options::recursive);
  b.runtime->adopt_shard_indexes(rows);
  CHECK(b.runtime->shard_indexes(shard) == rows);
  CHECK_THROWS(b.runtime->adopt_shard_indexes(json{{"alarms", json::array({{{"binding", "ROOM"}}})}, {"names", json::array()}}));
  a.runtime->forget_shard_indexes(shard);
  CHECK(a.runtime->shard_indexes(shard) == json{{"alarms", json::array()}, {"names", json::array()}});
  CHECK(a.runtime->close_shard_sockets(shard, 1012, "moved") == 1);
  REQUIRE(testing::eventually([&] { return sink->closes().size() == 1; }));
  CHECK(sink->closes()[0] == 1012);

  // Served on b at its own epoch, with what a acknowledged; the alarm fires there, once.
  there->set(shard, 9);
  auto moved = b.room(name);
  CHECK(testing::call(moved, "count").value() == 2);
  REQUIRE(testing::eventually([&] { return testing::call(moved, "count").value() == 3; },
                              std::chrono::milliseconds(9000)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(testing::call(moved, "count").value() == 3);
  CHECK(b.runtime->shard_indexes(shard)["alarms"].empty());
}
