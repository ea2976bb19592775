// The actor lifecycle: idle eviction by an injectable clock, the LRU cap, forced eviction,
// and hibernatable sockets (tags, attachments, auto-responses) across evictions.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <atomic>
#include <thread>

#include "cairn/limits.hpp"
#include "cairn/runtime.hpp"
#include "recording_sink.hpp"
#include "socket_table.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using namespace std::chrono_literals;

namespace {

std::atomic<int> room_constructions{0};

// A chat room: sockets tagged by user, the user in the attachment, a heartbeat rule.
class Room final : public Actor {
 public:
  explicit Room(Context& ctx) : ctx_(ctx) {
    ++room_constructions;
    auto rule = AutoResponse::heartbeat();
    rule.exact = AutoResponse::Exact{"ping", "pong"};
    if (!ctx_.set_websocket_auto_response(rule)) throw std::logic_error("rule refused");
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS log (what TEXT)");
  }
  Methods methods() override {
    return {
        {"broadcast", [this](const json& args) -> Result<json> {
           auto message = std::make_shared<const std::string>(args.get<std::string>());
           for (auto& socket : ctx_.websockets()) socket.send(message);
           return json(ctx_.websockets().size());
         }},
        {"sockets", [this](const json& args) -> Result<json> {
           return json(ctx_.websockets(args.is_string() ? args.get<std::string>() : "").size());
         }},
        {"timestamps", [this](const json&) -> Result<json> {
           json out = json::array();
           for (auto& socket : ctx_.websockets()) {
             auto at = ctx_.auto_response_timestamp(socket);
             out.push_back(at ? json(at->time_since_epoch().count()) : json(nullptr));
           }
           return out;
         }},
        {"log", [this](const json&) -> Result<json> {
           json out = json::array();
           for (const auto& row : ctx_.sql().exec("SELECT what FROM log ORDER BY rowid")) {
             out.push_back(std::get<std::string>(row["what"]));
           }
           return out;
         }},
        {"add", [this](const json&) -> Result<json> {
           ctx_.sql().exec("INSERT INTO log VALUES ('add')");
           return json(ctx_.sql().exec("SELECT count(*) AS c FROM log WHERE what = 'add'")
                           .one().to_json()["c"]);
         }},
    };
  }
  Response fetch(const Request& request) override {
    auto user = request.query_param("user");
    if (!user || !user->has_value()) return Response::error(Code::invalid_argument, "need ?user=");
    auto accepted = ctx_.accept_websocket(request, {"user:" + **user, "room"});
    if (!accepted) return Response::error(accepted.error());
    auto mine = ctx_.websockets("user:" + **user);
    for (auto& socket : mine) {
      if (socket.id() == request.websocket) {
        auto set = socket.set_attachment({{"user", **user}});
        if (!set) return Response::error(set.error());
      }
    }
    return *accepted;
  }
  void on_message(WebSocket& socket, std::string_view message, bool) override {
    std::string text(message);
    if (text == "who") {
      socket.send(json{{"attachment", socket.attachment()}, {"tags", socket.tags()}}.dump());
    } else if (text.rfind("set:", 0) == 0) {
      auto set = socket.set_attachment(json::parse(text.substr(4)));
      socket.send(set ? "set" : set.error().message);
    } else if (text.rfind("throw:", 0) == 0) {
      (void)socket.set_attachment(json::parse(text.substr(6)));
      throw std::runtime_error("after set_attachment");
    } else if (text == "close") {
      socket.close(4000, "bye");
    } else {
      socket.send("echo " + text);
    }
  }
  void on_error(WebSocket& socket, std::string_view error) override {
    ctx_.sql().exec("INSERT INTO log VALUES (?)",
                    "error " + socket.attachment().value("user", "?") + " " + std::string(error));
  }
  void on_close(WebSocket& socket, int code, std::string_view) override {
    ctx_.sql().exec("INSERT INTO log VALUES (?)",
                    "closed " + socket.attachment().value("user", "?") + " " + std::to_string(code));
  }

 private:
  Context& ctx_;
};

struct Fixture {
  TempDir dir;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  std::unique_ptr<Runtime> runtime;

  explicit Fixture(std::size_t max_live = 100) {
    Registry registry;
    registry.add<Room>("ROOM");
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.clock = clock;
    options.idle_timeout = 10s;
    options.max_live_instances = max_live;
    runtime = std::make_unique<Runtime>(std::move(registry), options);
  }
  Stub room(const std::string& name) { return *runtime->get("ROOM", name); }
  // Opens a socket on `room` for `user`; returns its sink and id.
  std::pair<std::shared_ptr<testing::RecordingSink>, SocketId> join(const std::string& name,
                                                                    const std::string& user) {
    auto sink = std::make_shared<testing::RecordingSink>();
    Request request = testing::get("/ws?user=" + user);
    request.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
    request.websocket = runtime->reserve_socket(sink);
    auto response = testing::fetch(room(name), request);
    REQUIRE(response.status == 101);
    return {sink, request.websocket};
  }
  // Evicts everything idle and waits until no instance is in memory.
  void hibernate() {
    clock->advance(11s);
    runtime->evict_idle();
    REQUIRE(testing::eventually([&] {
      auto s = runtime->stats();
      return s.live_instances == 0 && s.stopping_instances == 0;
    }));
  }
};

bool received(const std::shared_ptr<testing::RecordingSink>& sink, std::size_t count) {
  return testing::eventually([&] { return sink->messages().size() >= count; });
}

}  // namespace

TEST_CASE("an idle instance is evicted by the clock, an active one is not") {
  Fixture f;
  CHECK(testing::call(f.room("busy"), "add").ok());
  CHECK(testing::call(f.room("idle"), "add").ok());
  CHECK(f.runtime->stats().live_instances == 2);
  f.clock->advance(6s);
  CHECK(testing::call(f.room("busy"), "add").ok());
  f.clock->advance(6s);
  CHECK(f.runtime->evict_idle() == 1);  // "idle" was last used 12 s ago, "busy" 6 s ago
  REQUIRE(testing::eventually([&] { return f.runtime->stats().stopping_instances == 0; }));
  CHECK(f.runtime->stats().live_instances == 1);
  int before = room_constructions.load();
  CHECK(testing::call(f.room("idle"), "add").value() == 2);  // its data was kept
  CHECK(room_constructions.load() == before + 1);             // in a new instance
  CHECK(testing::call(f.room("busy"), "add").value() == 3);
  CHECK(room_constructions.load() == before + 1);
}

TEST_CASE("a socket survives eviction with its tags and attachment, and wakes the instance") {
  Fixture f;
  auto [ann, ann_id] = f.join("lobby", "ann");
  auto [bob, bob_id] = f.join("lobby", "bob");
  f.hibernate();
  CHECK(f.runtime->stats().websockets == 2);
  int before = room_constructions.load();

  f.runtime->socket_message(ann_id, "who", false);
  REQUIRE(received(ann, 1));
  CHECK(room_constructions.load() == before + 1);  // the message woke a new instance
  auto who = json::parse(ann->messages()[0]);
  CHECK(who["attachment"] == json{{"user", "ann"}});
  CHECK(who["tags"] == json{"user:ann", "room"});

  // websockets() of the new instance lists every socket still open, by tag too.
  CHECK(testing::call(f.room("lobby"), "sockets").value() == 2);
  CHECK(testing::call(f.room("lobby"), "sockets", "user:bob").value() == 1);
  CHECK(testing::call(f.room("lobby"), "broadcast", "news").value() == 2);
  REQUIRE(received(bob, 1));
  CHECK(bob->messages().back() == "news");
  CHECK(room_constructions.load() == before + 1);
}

TEST_CASE("a close on a hibernated socket wakes the instance, which sees the attachment") {
  Fixture f;
  auto [ann, ann_id] = f.join("closing", "ann");
  auto [bob, bob_id] = f.join("closing", "bob");
  f.hibernate();
  f.runtime->socket_closed(bob_id, 1001, "gone");
  REQUIRE(testing::eventually([&] { return f.runtime->stats().websockets == 1; }));
  auto log = testing::call(f.room("closing"), "log").value();
  CHECK(log == json{"closed bob 1001"});
  CHECK(testing::call(f.room("closing"), "sockets").value() == 1);
}

TEST_CASE("an error on a hibernated socket wakes the instance and forgets the socket") {
  Fixture f;
  auto [ann, ann_id] = f.join("erring", "ann");
  f.hibernate();
  int before = room_constructions.load();
  f.runtime->socket_error(ann_id, "connection reset");
  REQUIRE(testing::eventually([&] { return f.runtime->stats().websockets == 0; }));
  CHECK(testing::call(f.room("erring"), "log").value() == json{"error ann connection reset"});
  CHECK(room_constructions.load() == before + 1);
  CHECK(testing::call(f.room("erring"), "sockets").value() == 0);
}

TEST_CASE("auto-responses are answered without waking the instance, and time-stamped") {
  Fixture f;
  auto [ann, ann_id] = f.join("beat", "ann");
  f.hibernate();
  int before = room_constructions.load();
  auto stamped_at = f.clock->now();

  f.runtime->socket_message(ann_id, "ping", false);
  f.runtime->socket_message(ann_id, R"({"type":"ping","id":"a1","clientTime":1700000000000})", false);
  f.runtime->socket_message(ann_id, R"({"type":"ping"})", false);
  REQUIRE(received(ann, 3));
  auto messages = ann->messages();
  CHECK(messages[0] == "pong");
  CHECK(messages[1] == R"({"type":"pong","id":"a1","clientTime":1700000000000})");
  CHECK(messages[2] == R"({"type":"pong","id":"","clientTime":0})");
  CHECK(room_constructions.load() == before);  // still hibernated
  CHECK(f.runtime->stats().live_instances == 0);

  // A message no rule matches does wake it; the timestamp survived.
  f.runtime->socket_message(ann_id, R"({"type":"chat"})", false);
  REQUIRE(received(ann, 4));
  CHECK(ann->messages()[3] == R"(echo {"type":"chat"})");
  CHECK(room_constructions.load() == before + 1);
  auto stamps = testing::call(f.room("beat"), "timestamps").value();
  CHECK(stamps == json{stamped_at.time_since_epoch().count()});
}

TEST_CASE("set_attachment is undone when its event rolls back, and its size is limited") {
  Fixture f;
  auto [ann, ann_id] = f.join("attach", "ann");
  f.runtime->socket_message(ann_id, R"(throw:{"user":"mallory"})", false);
  f.runtime->socket_message(ann_id, "who", false);
  REQUIRE(received(ann, 1));
  CHECK(json::parse(ann->messages()[0])["attachment"] == json{{"user", "ann"}});

  std::string big(limits::max_websocket_attachment_bytes, 'x');
  f.runtime->socket_message(ann_id, "set:\"" + big + "\"", false);
  REQUIRE(received(ann, 2));
  CHECK(ann->messages()[1].find("limits::max_websocket_attachment_bytes") != std::string::npos);
  f.runtime->socket_message(ann_id, R"(set:{"user":"ann","seat":"1A"})", false);
  REQUIRE(received(ann, 3));
  CHECK(ann->messages()[2] == "set");
  f.hibernate();
  f.runtime->socket_message(ann_id, "who", false);
  REQUIRE(received(ann, 4));
  CHECK(json::parse(ann->messages()[3])["attachment"] == json{{"seat", "1A"}, {"user", "ann"}});
}

TEST_CASE("the live count stays at the cap however many instances are touched") {
  constexpr std::size_t cap = 4;
  Fixture f(cap);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5 * static_cast<int>(cap); ++i) {
      auto result = testing::call(f.room("r" + std::to_string(i)), "add");
      REQUIRE(result.ok());
      CHECK(result.value() == round + 1);  // each room kept its own data across evictions
      CHECK(f.runtime->stats().live_instances <= cap);
    }
  }
  CHECK(f.runtime->stats().evictions >= 2 * 5 * cap - cap);
}

TEST_CASE("the instance evicted to make room is the one not used since the others were") {
  // The clock never moves: what decides is the order of use, not timestamps.
  Fixture f(3);
  for (const char* name : {"a", "b", "c"}) REQUIRE(testing::call(f.room(name), "add").ok());
  REQUIRE(testing::call(f.room("a"), "add").ok());
  REQUIRE(testing::call(f.room("b"), "add").ok());
  int before = room_constructions.load();
  REQUIRE(testing::call(f.room("d"), "add").ok());  // over the cap: one of a, b, c goes
  CHECK(room_constructions.load() == before + 1);
  REQUIRE(testing::eventually([&] { return f.runtime->stats().stopping_instances == 0; }));
  // a and b were used after c: they are still in memory, c is not.
  REQUIRE(testing::call(f.room("a"), "add").ok());
  REQUIRE(testing::call(f.room("b"), "add").ok());
  CHECK(room_constructions.load() == before + 1);
  auto c = testing::call(f.room("c"), "add");
  REQUIRE(c.ok());
  CHECK(c.value() == 2);  // its data survived the eviction
  CHECK(room_constructions.load() == before + 2);
}

TEST_CASE("many threads calling many actors under a small cap: every call answered once, in order per actor") {
  // Actors spread over the directory's stripes, the cap forcing starts and evictions all the
  // time, forced evictions racing them, and each caller sending three calls at once so that
  // some wait for a next instance while others find it live: each actor's count must go
  // 1, 2, 3... in the order its caller sent (nothing lost, duplicated or reordered).
  constexpr std::size_t cap = 8;
  constexpr int threads = 4;
  constexpr int actors_per_thread = 10;
  constexpr int rounds = 10;
  constexpr int burst = 3;
  Fixture f(cap);
  auto name = [](int thread, int actor) { return "t" + std::to_string(thread) + "-" + std::to_string(actor); };
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread evictor([&] {
    for (int i = 0; !done; ++i) {  // every actor in turn
      (void)f.runtime->evict("ROOM", name(i % threads, (i / threads) % actors_per_thread));
      std::this_thread::sleep_for(200us);
    }
  });
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (int round = 0; round < rounds; ++round) {
        for (int a = 0; a < actors_per_thread; ++a) {
          auto stub = f.room(name(t, a));
          std::vector<std::future<Result<json>>> replies;
          for (int k = 0; k < burst; ++k) {
            auto p = std::make_shared<std::promise<Result<json>>>();
            replies.push_back(p->get_future());
            stub.call("add", {}, [p](Result<json> r) { p->set_value(std::move(r)); });
          }
          for (int k = 0; k < burst; ++k) {
            auto result = testing::wait_for(replies[static_cast<std::size_t>(k)]);
            if (!result.ok() || result.value() != round * burst + k + 1) ++failures;
          }
        }
      }
    });
  }
  for (auto& caller : callers) caller.join();
  done = true;
  evictor.join();
  CHECK(failures.load() == 0);
  CHECK(f.runtime->stats().live_instances <= cap);
  CHECK(f.runtime->stats().evictions > 0);
}

TEST_CASE("events racing an eviction are all answered, in order, by the next instance") {
  Fixture f;
  auto stub = f.room("racy");
  constexpr int n = 300;
  std::vector<std::shared_ptr<std::promise<Result<json>>>> replies;
  std::atomic<bool> done{false};
  std::thread evictor([&] {
    while (!done) {
      (void)f.runtime->evict("ROOM", "racy");
      std::this_thread::sleep_for(100us);
    }
  });
  for (int i = 0; i < n; ++i) {
    auto p = std::make_shared<std::promise<Result<json>>>();
    replies.push_back(p);
    stub.call("add", {}, [p](Result<json> r) { p->set_value(std::move(r)); });
  }
  std::vector<int> counts;
  for (auto& p : replies) {
    auto future = p->get_future();
    auto result = testing::wait_for(future);
    REQUIRE(result.ok());
    counts.push_back(result.value().get<int>());
  }
  done = true;
  evictor.join();
  for (int i = 0; i < n; ++i) CHECK(counts[static_cast<std::size_t>(i)] == i + 1);
  CHECK(f.runtime->stats().evictions > 0);
}

TEST_CASE("forced eviction of one instance, unknown ones are not live") {
  Fixture f;
  CHECK(testing::call(f.room("one"), "add").ok());
  CHECK(f.runtime->evict("ROOM", "one").value());
  CHECK(!f.runtime->evict("ROOM", "never-used").value());
  CHECK(f.runtime->evict("NOPE", "x").error().code == Code::not_found);
  REQUIRE(testing::eventually([&] { return f.runtime->stats().live_instances == 0; }));
}

TEST_CASE("an actor may hold at most limits::max_websockets_per_actor sockets") {
  detail::SocketTable table;
  auto owner = *ActorId::make("ROOM", "full");
  for (std::size_t i = 0; i < limits::max_websockets_per_actor; ++i) {
    REQUIRE(table.accept(table.reserve(nullptr), owner, {}).ok());
  }
  auto over = table.accept(table.reserve(nullptr), owner, {});
  REQUIRE(!over.ok());
  CHECK(over.error().code == Code::resource_exhausted);
  CHECK(over.error().message.find("limits::max_websockets_per_actor") != std::string::npos);
  CHECK(table.accept(table.reserve(nullptr), *ActorId::make("ROOM", "other"), {}).ok());
  auto tags = table.accept(table.reserve(nullptr), owner, {std::string(257, 't')});
  CHECK(tags.error().message.find("limits::max_websocket_tag_bytes") != std::string::npos);
}

TEST_CASE("auto-response rules: exact pairs, JSON rules, and their limits") {
  auto pair = AutoResponse::pair("hb", "ok");
  CHECK(pair.answer("hb") == "ok");
  CHECK(!pair.answer("hb ").has_value());
  auto beat = AutoResponse::heartbeat();
  CHECK(beat.answer(R"({"type":"ping","id":7,"clientTime":3})") ==
        R"({"type":"pong","id":7,"clientTime":3})");
  CHECK(!beat.answer(R"({"type":"pong"})").has_value());
  CHECK(!beat.answer(R"(["type","ping"])").has_value());
  CHECK(!beat.answer("not json {").has_value());
  CHECK(pair.validate().ok());
  CHECK(beat.validate().ok());
  CHECK(!AutoResponse{}.validate().ok());
  CHECK(!AutoResponse::pair("", "x").validate().ok());
  auto too_big = AutoResponse::pair("x", std::string(limits::max_auto_response_bytes + 1, 'y')).validate();
  REQUIRE(!too_big.ok());
  CHECK(too_big.error().message.find("limits::max_auto_response_bytes") != std::string::npos);
  auto bad_reply = AutoResponse::heartbeat();
  bad_reply.json_rule->reply = "pong";
  CHECK(!bad_reply.validate().ok());
}

TEST_CASE("the descriptor limit is raised to the hard limit") {
  rlimit before{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
  auto raised = raise_descriptor_limit();
  rlimit after{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &after) == 0);
  CHECK(raised == after.rlim_cur);
  CHECK(after.rlim_cur >= before.rlim_cur);
  if (before.rlim_max != RLIM_INFINITY) CHECK(after.rlim_cur == before.rlim_max);
}

namespace {

// Says which version of its code runs (replace_class).
class Versioned final : public Actor {
 public:
  Versioned(Context& ctx, int version) : ctx_(ctx), version_(version) {}
  Methods methods() override {
    return {{"version", [this](const json&) -> Result<json> { return json(version_); }}};
  }
  Response fetch(const Request& request) override {
    auto accepted = ctx_.accept_websocket(request, {});
    return accepted ? *accepted : Response::error(accepted.error());
  }
  void on_message(WebSocket& socket, std::string_view message, bool) override {
    socket.send("v" + std::to_string(version_) + " " + std::string(message));
  }

 private:
  Context& ctx_;
  int version_;
};

}  // namespace

TEST_CASE("replace_class: live instances are evicted and wake on the new class with their sockets still open") {
  TempDir dir;
  Registry registry;
  registry.add("VER", [](Context& ctx) { return std::make_unique<Versioned>(ctx, 1); });
  RuntimeOptions options;
  options.data_dir = dir.path();
  options.threads = 2;
  Runtime runtime(std::move(registry), options);
  auto sink = std::make_shared<testing::RecordingSink>();
  Request upgrade = testing::get("/ws");
  upgrade.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  upgrade.websocket = runtime.reserve_socket(sink);
  REQUIRE(testing::fetch(*runtime.get("VER", "a"), upgrade).status == 101);
  runtime.socket_message(upgrade.websocket, "before", false);
  REQUIRE(received(sink, 1));
  CHECK(sink->messages()[0] == "v1 before");
  CHECK(testing::call(*runtime.get("VER", "b"), "version").value() == 1);

  auto replaced = runtime.replace_class("VER", [](Context& ctx) { return std::make_unique<Versioned>(ctx, 2); });
  REQUIRE(replaced.ok());
  CHECK(replaced.value() == 2);  // both live instances
  REQUIRE(testing::eventually([&] { return runtime.stats().live_instances == 0; }));
  CHECK(runtime.stats().websockets == 1);  // hibernated, not closed
  runtime.socket_message(upgrade.websocket, "after", false);
  REQUIRE(received(sink, 2));
  CHECK(sink->messages()[1] == "v2 after");
  CHECK(testing::call(*runtime.get("VER", "b"), "version").value() == 2);
  CHECK(testing::call(*runtime.get("VER", "never-before"), "version").value() == 2);
  CHECK(runtime.replace_class("NOPE", [](Context& ctx) { return std::make_unique<Versioned>(ctx, 3); }).error().code ==
        Code::not_found);
  CHECK(runtime.replace_class("VER", nullptr).error().code == Code::invalid_argument);
}
