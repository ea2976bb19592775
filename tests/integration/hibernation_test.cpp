// Hibernatable WebSockets end to end: a real Gateway on an ephemeral loopback port in this
// process (so the test drives the clock and reads the runtime's counters), real Beast
// clients, the Flight class and a test class.
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "cairn/gateway/gateway.hpp"
#include "cairn/limits.hpp"
#include "cairn/runtime.hpp"
#include "clients.hpp"
#include "flight/flight.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn::testing;
using cairn::json;
using namespace std::chrono_literals;

namespace {

// Sockets tagged by user with the user in the attachment; /spam broadcasts big messages.
class Room final : public cairn::Actor {
 public:
  explicit Room(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS log (what TEXT)");
  }
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/ws") {
      auto user = request.query_param("user");
      if (!user || !user->has_value()) {
        return cairn::Response::error(cairn::Code::invalid_argument, "need ?user=");
      }
      auto accepted = ctx_.accept_websocket(request, {"user:" + **user});
      if (!accepted) return cairn::Response::error(accepted.error());
      for (auto& socket : ctx_.websockets("user:" + **user)) {
        if (socket.id() == request.websocket) (void)socket.set_attachment({{"user", **user}});
      }
      return *accepted;
    }
    if (request.path() == "/spam") {
      int n = std::stoi(std::string(**request.query_param("n")));
      auto size = std::stoul(std::string(**request.query_param("size")));
      for (int i = 0; i < n; ++i) {
        auto message = std::make_shared<const std::string>(size, static_cast<char>('a' + i % 26));
        for (auto& socket : ctx_.websockets()) socket.send(message);
      }
      return cairn::Response::json(200, {{"sent", n}});
    }
    if (request.path() == "/log") {
      json out = json::array();
      for (const auto& row : ctx_.sql().exec("SELECT what FROM log ORDER BY rowid")) {
        out.push_back(std::get<std::string>(row["what"]));
      }
      return cairn::Response::json(200, out);
    }
    return Actor::fetch(request);
  }
  void on_message(cairn::WebSocket& socket, std::string_view message, bool) override {
    if (message == "who") {
      socket.send(json{{"attachment", socket.attachment()}, {"tags", socket.tags()}}.dump());
    }
  }
  void on_close(cairn::WebSocket& socket, int code, std::string_view reason) override {
    ctx_.sql().exec("INSERT INTO log VALUES (?)", socket.attachment().value("user", "?") + " " +
                                                      std::to_string(code) + " " + std::string(reason));
  }

 private:
  cairn::Context& ctx_;
};

struct Server {
  TempDir dir;
  std::shared_ptr<cairn::ManualClock> clock = std::make_shared<cairn::ManualClock>();
  std::unique_ptr<cairn::Runtime> runtime;
  std::unique_ptr<cairn::gateway::Gateway> gateway;

  explicit Server(std::size_t max_live = 100) {
    cairn::Registry registry;
    registry.add<cairn::actors::Flight>("FLIGHT");
    registry.add<Room>("ROOM");
    cairn::RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.clock = clock;
    options.max_live_instances = max_live;
    runtime = std::make_unique<cairn::Runtime>(std::move(registry), options);
    cairn::gateway::GatewayOptions web;
    web.port = 0;
    for (const char* path : {"/seats", "/book-seat", "/ws"}) web.routes.push_back({path, "FLIGHT", "flightId"});
    web.object_bindings = {"FLIGHT", "ROOM"};
    gateway = std::make_unique<cairn::gateway::Gateway>(*runtime, web);
    gateway->start();
  }
  ~Server() {
    gateway->stop_accepting();
    runtime->shutdown();
    gateway->stop();
  }
  std::uint16_t port() const { return gateway->port(); }
  void hibernate() {
    clock->advance(cairn::limits::default_idle_timeout + 1s);
    runtime->evict_idle();
    REQUIRE(eventually([&] {
      auto s = runtime->stats();
      return s.live_instances == 0 && s.stopping_instances == 0;
    }));
  }
};

json parse(const std::optional<std::string>& text) {
  REQUIRE(text.has_value());
  return json::parse(*text);
}

}  // namespace

TEST_CASE("a flight's socket survives eviction and gets the next broadcast") {
  Server server;
  WsClient client(server.port(), "/ws?flightId=hib");
  server.hibernate();
  auto started = server.runtime->stats().instances_started;
  CHECK(server.runtime->stats().websockets == 1);

  // A message wakes the instance (its constructor runs again) and is answered.
  REQUIRE(client.send(R"({"type":"getSeats"})"));
  CHECK(parse(client.read()).size() == 60);
  CHECK(server.runtime->stats().instances_started == started + 1);

  server.hibernate();
  auto booked = http_post(server.port(), "/book-seat?flightId=hib", R"({"seatNumber":"2B","name":"Ann"})");
  CHECK(booked.status == 200);
  auto seats = parse(client.read());
  bool found = false;
  for (const auto& s : seats) found = found || (s["seatNumber"] == "2B" && s["occupant"] == "Ann");
  CHECK(found);

  REQUIRE(client.send(R"({"type":"nonsense"})"));
  auto error = parse(client.read());
  CHECK(error["status"] == 400);
  CHECK(error["error"].get<std::string>().find("nonsense") != std::string::npos);
}

TEST_CASE("tags and attachment come back after a wake, through the generic route") {
  Server server;
  WsClient ann(server.port(), "/objects/ROOM/lobby/ws?user=ann");
  WsClient bob(server.port(), "/objects/ROOM/lobby/ws?user=bob");
  server.hibernate();
  auto started = server.runtime->stats().instances_started;
  REQUIRE(bob.send("who"));
  auto who = parse(bob.read());
  CHECK(who["attachment"] == json{{"user", "bob"}});
  CHECK(who["tags"] == json{"user:bob"});
  CHECK(server.runtime->stats().instances_started == started + 1);

  // A clean close by the client: it sees its own code back, and the woken actor hears it.
  server.hibernate();
  CHECK(ann.close(static_cast<boost::beast::websocket::close_code>(4001)) == 4001);
  REQUIRE(eventually([&] { return server.runtime->stats().websockets == 1; }));
  auto log = http_get(server.port(), "/objects/ROOM/lobby/log");
  CHECK(json::parse(log.body) == json{"ann 4001 "});
}

TEST_CASE("the heartbeat is answered while the flight stays hibernated") {
  Server server;
  WsClient client(server.port(), "/ws?flightId=beat");
  server.hibernate();
  auto started = server.runtime->stats().instances_started;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(client.send(json{{"type", "ping"}, {"id", "p" + std::to_string(i)}, {"clientTime", 1000 + i}}.dump()));
    auto pong = parse(client.read());
    CHECK(pong == json{{"type", "pong"}, {"id", "p" + std::to_string(i)}, {"clientTime", 1000 + i}});
  }
  CHECK(server.runtime->stats().instances_started == started);
  CHECK(server.runtime->stats().live_instances == 0);
}

TEST_CASE("a client that does not read is closed with 1008, the others keep receiving") {
  Server server;
  WsClient fast(server.port(), "/objects/ROOM/flood/ws?user=fast");
  WsClient slow(server.port(), "/objects/ROOM/flood/ws?user=slow", 4096);
  // 25 rounds of 8 x 64 KiB, each sent once the fast client has read the last: 12.8 MiB in
  // all, far more than the slow client's 1 MiB queue plus the kernel's buffers.
  constexpr int rounds = 25, per_round = 8, n = rounds * per_round;
  std::atomic<int> fast_received{0};
  std::thread reader([&] {
    for (int i = 0; i < n; ++i) {
      auto message = fast.read();
      if (!message || message->size() != 65536) break;
      ++fast_received;
    }
  });
  HttpClient http(server.port());
  for (int round = 0; round < rounds; ++round) {
    auto sent = http.request(boost::beast::http::verb::get,
                             "/objects/ROOM/flood/spam?n=" + std::to_string(per_round) + "&size=65536");
    CHECK(sent.status == 200);
    if (!eventually([&] { return fast_received.load() == (round + 1) * per_round; })) break;
  }
  reader.join();
  CHECK(fast_received.load() == n);
  std::size_t slow_received = 0;
  int code = slow.read_until_closed(&slow_received);
  CHECK(code == 1008);
  CHECK(slow_received < static_cast<std::size_t>(n));
  REQUIRE(eventually([&] { return server.runtime->stats().websockets == 1; }));
}

TEST_CASE("a message over the inbound limit closes the socket with 1009") {
  Server server;
  WsClient client(server.port(), "/ws?flightId=big");
  REQUIRE(client.send(std::string(cairn::limits::max_websocket_message_bytes + 1, 'x')));
  CHECK(client.read_until_closed() == 1009);
  REQUIRE(eventually([&] { return server.runtime->stats().websockets == 0; }));
}

TEST_CASE("the generic route forwards HTTP to the named instance and checks its parts") {
  Server server;
  auto seats = http_get(server.port(), "/objects/FLIGHT/LH%20400/seats");
  REQUIRE(seats.status == 200);
  CHECK(json::parse(seats.body).size() == 60);
  auto booked = http_post(server.port(), "/objects/FLIGHT/LH%20400/book-seat",
                          R"({"seatNumber":"1A","name":"Ann"})");
  CHECK(booked.status == 200);
  // The same instance as ?flightId=LH 400.
  auto same = json::parse(http_get(server.port(), "/seats?flightId=LH+400").body);
  CHECK(same[0]["occupant"] == "Ann");
  for (auto [target, status] : std::vector<std::pair<std::string, int>>{
           {"/objects/NOPE/x/seats", 404},
           {"/objects/FLIGHT", 400},
           {"/objects/FLIGHT/", 400},
           {"/objects/FLIGHT/%ZZ/seats", 400},
           {"/objects/FLIGHT/" + std::string(cairn::limits::max_actor_name_bytes + 1, 'n') + "/seats", 400},
           {"/objects/FLIGHT/x/nowhere", 404}}) {
    auto reply = http_get(server.port(), target);
    CHECK_MESSAGE(reply.status == status, target);
    auto body = json::parse(reply.body, nullptr, false);
    CHECK_MESSAGE(body["status"] == status, target);
  }
}

TEST_CASE("touching 5x the live cap keeps it, and every flight still answers correctly") {
  constexpr std::size_t cap = 4;
  Server server(cap);
  HttpClient http(server.port());
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < 5 * cap; ++i) {
      std::string flight = "cap" + std::to_string(i);
      std::string seat = round == 0 ? "1A" : "2A";
      auto booked = http.request(boost::beast::http::verb::post, "/book-seat?flightId=" + flight,
                                 json{{"seatNumber", seat}, {"name", "p" + std::to_string(round)}}.dump());
      CHECK(booked.status == 200);
      auto seats = json::parse(http.request(boost::beast::http::verb::get, "/seats?flightId=" + flight).body);
      CHECK(seats[0]["occupant"] == "p0");
      CHECK(seats[6]["occupant"] == (round == 0 ? json(nullptr) : json("p1")));
      CHECK(server.runtime->stats().live_instances <= cap);
    }
  }
  auto health = json::parse(http.request(boost::beast::http::verb::get, "/healthz").body);
  CHECK(health["live_instances"].get<std::size_t>() <= cap);
}
