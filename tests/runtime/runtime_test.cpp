#include "cairn/runtime.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "recording_sink.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"
#include "data_layout.hpp"

using namespace cairn;
using cairn::testing::TempDir;

namespace {

std::atomic<int> constructions{0};

// A small actor that exercises the contract: writes, throws, sockets, a commit that fails.
class Ledger final : public Actor {
 public:
  explicit Ledger(Context& ctx) : ctx_(ctx) {
    ++constructions;
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS entries (n INTEGER)");
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)");
    ctx_.sql().exec(
        "CREATE TABLE IF NOT EXISTS child (p INTEGER REFERENCES parent(id) "
        "DEFERRABLE INITIALLY DEFERRED)");
  }
  Methods methods() override {
    return {
        {"add", [this](const json& args) -> Result<json> {
           ctx_.sql().exec("INSERT INTO entries VALUES (?)", args.at("n").get<int>());
           for (auto& socket : ctx_.websockets()) socket.send("added " + args.at("n").dump());
           return json{{"ok", true}};
         }},
        {"count", [this](const json&) -> Result<json> {
           return ctx_.sql().exec("SELECT count(*) AS c FROM entries").one().to_json()["c"];
         }},
        {"add_then_throw", [this](const json&) -> Result<json> {
           ctx_.sql().exec("INSERT INTO entries VALUES (99)");
           for (auto& socket : ctx_.websockets()) socket.send("never");
           throw std::runtime_error("boom");
         }},
        {"orphan", [this](const json&) -> Result<json> {
           // Legal now, fails at COMMIT: the deferred foreign key has no parent.
           ctx_.sql().exec("INSERT INTO child VALUES (42)");
           for (auto& socket : ctx_.websockets()) socket.send("never");
           return json{{"ok", true}};
         }},
        {"name", [this](const json&) -> Result<json> { return json(ctx_.id().name()); }},
        // No SQL at all: the event opens no transaction and no savepoint.
        {"ping", [this](const json&) -> Result<json> {
           for (auto& socket : ctx_.websockets()) socket.send("pong");
           return json("pong");
         }},
        {"throw_without_sql", [](const json&) -> Result<json> { throw std::runtime_error("no sql, still boom"); }},
    };
  }
  Response fetch(const Request& request) override {
    if (request.path() == "/ws") {
      auto accepted = ctx_.accept_websocket(request, {"room"});
      return accepted ? *accepted : Response::error(accepted.error());
    }
    if (request.path() == "/bad-tags") {
      auto accepted = ctx_.accept_websocket(request, std::vector<std::string>(11, "t"));
      return accepted ? *accepted : Response::error(accepted.error());
    }
    return Actor::fetch(request);
  }

 private:
  Context& ctx_;
};

Registry ledger_registry() {
  Registry r;
  r.add<Ledger>("LEDGER");
  return r;
}

RuntimeOptions options_for(const TempDir& dir) {
  RuntimeOptions o;
  o.data_dir = dir.path();
  o.threads = 2;
  return o;
}

Request upgrade(std::string target, SocketId socket) {
  Request r = cairn::testing::get(std::move(target));
  r.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  r.websocket = socket;
  return r;
}

}  // namespace

TEST_CASE("a stub reaches its actor, which knows its own name") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto stub = runtime.get("LEDGER", "alpha");
  REQUIRE(stub.ok());
  CHECK(testing::call(*stub, "name").value() == "alpha");
  CHECK(std::filesystem::exists(detail::actor_database(dir.path(), stub->id())));
}

TEST_CASE("unknown bindings, bad names and unknown methods are clear errors") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  CHECK(runtime.get("NOPE", "a").error().code == Code::not_found);
  CHECK(runtime.get("LEDGER", "").error().code == Code::invalid_argument);
  auto result = testing::call(*runtime.get("LEDGER", "a"), "nope");
  REQUIRE(!result.ok());
  CHECK(result.error().code == Code::not_found);
}

TEST_CASE("a throwing handler rolls back, answers 500, and the next event gets a fresh instance") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto stub = *runtime.get("LEDGER", "throws");
  auto sink = std::make_shared<testing::RecordingSink>();
  SocketId socket = runtime.reserve_socket(sink);
  CHECK(testing::fetch(stub, upgrade("/ws", socket)).status == 101);
  int before = constructions.load();
  auto failed = testing::fetch(stub, testing::post("/rpc", ""));  // 404 from the default fetch
  CHECK(failed.status == 404);
  auto thrown = testing::call(stub, "add_then_throw");
  REQUIRE(!thrown.ok());
  CHECK(thrown.error().code == Code::internal);
  CHECK(thrown.error().message.find("boom") != std::string::npos);
  CHECK(testing::call(stub, "count").value() == 0);  // the insert was rolled back
  CHECK(constructions.load() == before + 1);         // and the instance was made anew
  CHECK(sink->messages().empty());                   // nothing the failed event sent left
  CHECK(testing::call(stub, "add", {{"n", 1}}).ok());
  CHECK(testing::call(stub, "count").value() == 1);
}

TEST_CASE("events without SQL mixed with writing and throwing ones in shared batches keep every rule") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto stub = *runtime.get("LEDGER", "mixed");
  auto sink = std::make_shared<testing::RecordingSink>();
  SocketId socket = runtime.reserve_socket(sink);
  CHECK(testing::fetch(stub, upgrade("/ws", socket)).status == 101);
  std::atomic<int> pongs{0}, thrown{0}, added{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        switch ((i + t) % 3) {
          case 0: pongs += testing::call(stub, "ping").ok(); break;
          case 1: added += testing::call(stub, "add", {{"n", i}}).ok(); break;
          default: {
            auto r = testing::call(stub, "throw_without_sql");
            thrown += !r.ok() && r.error().message.find("no sql, still boom") != std::string::npos;
          }
        }
      }
    });
  }
  for (auto& c : callers) c.join();
  CHECK(pongs == 30);
  CHECK(added == 30);
  CHECK(thrown == 30);
  CHECK(testing::call(stub, "count").value() == 30);  // no rolled-back event took a write with it
  REQUIRE(testing::eventually([&] { return sink->messages().size() == 60; }));  // 30 "pong" + 30 "added"
  runtime.shutdown();
  Runtime again(ledger_registry(), options_for(dir));
  CHECK(testing::call(*again.get("LEDGER", "mixed"), "count").value() == 30);
}

TEST_CASE("when the commit fails, the answer is an error and no socket hears of the event") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto stub = *runtime.get("LEDGER", "commit-fails");
  auto sink = std::make_shared<testing::RecordingSink>();
  SocketId socket = runtime.reserve_socket(sink);
  CHECK(testing::fetch(stub, upgrade("/ws", socket)).status == 101);
  auto result = testing::call(stub, "orphan");
  REQUIRE(!result.ok());  // the reply waited for the commit, which failed
  CHECK(result.error().code == Code::internal);
  CHECK(sink->messages().empty());
  CHECK(testing::call(stub, "add", {{"n", 5}}).ok());  // the actor recovers
  CHECK(testing::call(stub, "count").value() == 1);
}

TEST_CASE("socket sends leave after the commit, to the actor's sockets only") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto a = *runtime.get("LEDGER", "a");
  auto b = *runtime.get("LEDGER", "b");
  auto sink_a = std::make_shared<testing::RecordingSink>();
  auto sink_b = std::make_shared<testing::RecordingSink>();
  CHECK(testing::fetch(a, upgrade("/ws", runtime.reserve_socket(sink_a))).status == 101);
  CHECK(testing::fetch(b, upgrade("/ws", runtime.reserve_socket(sink_b))).status == 101);
  CHECK(testing::call(a, "add", {{"n", 7}}).ok());
  CHECK(sink_a->messages() == std::vector<std::string>{"added 7"});
  CHECK(sink_b->messages().empty());
}

TEST_CASE("accepting a socket checks the tag limit and needs an upgrade request") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto stub = *runtime.get("LEDGER", "tags");
  auto sink = std::make_shared<testing::RecordingSink>();
  auto bad = testing::fetch(stub, upgrade("/bad-tags", runtime.reserve_socket(sink)));
  CHECK(bad.status == 400);
  CHECK(bad.body.find("at most 10 tags") != std::string::npos);
  CHECK(testing::fetch(stub, testing::get("/ws")).status == 400);
}

TEST_CASE("concurrent first events for one new id create exactly one instance") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  int before = constructions.load();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto stub = *runtime.get("LEDGER", "fresh");
      if (testing::call(stub, "add", {{"n", i}}).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok.load() == 16);
  CHECK(constructions.load() == before + 1);
  CHECK(testing::call(*runtime.get("LEDGER", "fresh"), "count").value() == 16);
}

TEST_CASE("acknowledged writes survive a shutdown and a new runtime on the same data") {
  TempDir dir;
  for (auto durability : {Durability::full, Durability::normal}) {
    std::string name = durability == Durability::full ? "full" : "normal";
    {
      auto options = options_for(dir);
      options.durability = durability;
      Runtime runtime(ledger_registry(), options);
      auto stub = *runtime.get("LEDGER", name);
      std::vector<std::shared_ptr<std::promise<bool>>> acks;
      for (int i = 0; i < 50; ++i) {  // many in flight at once: they share commits
        auto p = std::make_shared<std::promise<bool>>();
        acks.push_back(p);
        stub.call("add", {{"n", i}}, [p](Result<json> r) { p->set_value(r.ok()); });
      }
      for (auto& p : acks) {
        auto f = p->get_future();
        CHECK(testing::wait_for(f));
      }
    }
    Runtime again(ledger_registry(), options_for(dir));
    CHECK(testing::call(*again.get("LEDGER", name), "count").value() == 50);
  }
}

TEST_CASE("after shutdown, calls answer unavailable instead of hanging") {
  TempDir dir;
  Runtime runtime(ledger_registry(), options_for(dir));
  auto stub = *runtime.get("LEDGER", "late");
  runtime.shutdown();
  auto result = testing::call(stub, "count");
  REQUIRE(!result.ok());
  CHECK(result.error().code == Code::unavailable);
}
