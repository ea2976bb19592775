// WebSocket backpressure through the real gateway with a real client: a socket whose actor
// is behind stops being read and is read again once it catches up (every message runs, the
// socket stays open); a socket whose actor's queue is full is closed with 1013, the actor
// hears of the close and the connection's slot is given back.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cairn/gateway/gateway.hpp"
#include "cairn/runtime.hpp"
#include "clients.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Holds the actor inside on_message("hold") until opened.
struct Valve {
  std::mutex mutex;
  std::promise<void> opened;
  std::shared_future<void> open_future = opened.get_future().share();
  std::promise<void> held;
  std::shared_future<void> held_future = held.get_future().share();
  void hold() {
    held.set_value();
    if (open_future.wait_for(reply_deadline) != std::future_status::ready) throw std::runtime_error("never opened");
  }
};
std::shared_ptr<Valve> valve;
std::atomic<int> closes_heard{0};

class Sink final : public cairn::Actor {
 public:
  explicit Sink(cairn::Context& ctx) : ctx_(ctx) { ctx_.sql().exec("CREATE TABLE IF NOT EXISTS got (m TEXT)"); }
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/count") {
      return cairn::Response::json(200, ctx_.sql().exec("SELECT count(*) AS n FROM got").one().to_json()["n"]);
    }
    auto accepted = ctx_.accept_websocket(request, {});
    return accepted ? *accepted : cairn::Response::error(accepted.error());
  }
  void on_message(cairn::WebSocket& socket, std::string_view message, bool) override {
    if (message == "hold") {
      valve->hold();
      return;
    }
    ctx_.sql().exec("INSERT INTO got VALUES (?)", std::string(message));
    if (message == "last") socket.send("done");
  }
  void on_close(cairn::WebSocket&, int code, std::string_view) override {
    if (code == cairn::limits::overloaded_close_code) ++closes_heard;
  }

 private:
  cairn::Context& ctx_;
};

struct Server {
  std::unique_ptr<cairn::Runtime> runtime;
  std::unique_ptr<cairn::gateway::Gateway> gateway;
  Server(const std::filesystem::path& dir, std::size_t max_queued) {
    cairn::Registry registry;
    registry.add<Sink>("SINK");
    cairn::RuntimeOptions options;
    options.data_dir = dir;
    options.threads = 2;
    options.max_queued_events = max_queued;
    runtime = std::make_unique<cairn::Runtime>(std::move(registry), options);
    cairn::gateway::GatewayOptions web;
    web.port = 0;
    web.object_bindings = {"SINK"};
    gateway = std::make_unique<cairn::gateway::Gateway>(*runtime, web);
    gateway->start();
  }
  ~Server() {
    gateway->stop_accepting();
    runtime->shutdown();
    gateway->stop();
  }
  std::uint16_t port() const { return gateway->port(); }
};

std::int64_t count(std::uint16_t port, const std::string& name) {
  return json::parse(http_get(port, "/objects/SINK/" + name + "/count").body).get<std::int64_t>();
}

}  // namespace

TEST_CASE("a flooding client is paused while its actor is behind, then every message runs and the socket stays open") {
  TempDir dir;
  Server server(dir.path(), 1000);
  valve = std::make_shared<Valve>();
  WsClient client(server.port(), "/objects/SINK/paused/ws");
  REQUIRE(client.send("hold"));
  REQUIRE(valve->held_future.wait_for(reply_deadline) == std::future_status::ready);
  // Far more than limits::max_socket_messages_waiting: the gateway must stop reading (the
  // rest waits in the kernel's buffers), not queue them all or close the socket.
  constexpr int messages = 500;
  for (int i = 0; i < messages; ++i) REQUIRE(client.send("m" + std::to_string(i)));
  REQUIRE(client.send("last"));
  valve->opened.set_value();
  auto done = client.read();
  REQUIRE(done);
  CHECK(*done == "done");
  CHECK(count(server.port(), "paused") == messages + 1);
  CHECK(client.close_code() == 0);  // still open
}

TEST_CASE("a client whose actor's queue is full is closed with 1013, the actor hears it and the slot is freed") {
  TempDir dir;
  Server server(dir.path(), 4);
  valve = std::make_shared<Valve>();
  closes_heard = 0;
  WsClient client(server.port(), "/objects/SINK/full/ws");
  REQUIRE(client.send("hold"));
  REQUIRE(valve->held_future.wait_for(reply_deadline) == std::future_status::ready);
  for (int i = 0; i < 20; ++i) {
    if (!client.send("m" + std::to_string(i))) break;  // the server may have closed already
  }
  // The close comes while the actor is still held (opened before, a slow gateway could read
  // the messages only as fast as the actor ran them, and the queue would never fill).
  CHECK(client.read_until_closed() == cairn::limits::overloaded_close_code);
  valve->opened.set_value();
  // The actor's on_close ran with 1013, and the gateway no longer holds the connection.
  REQUIRE(eventually([&] { return closes_heard.load() == 1; }));
  REQUIRE(eventually([&] {
    auto health = json::parse(http_get(server.port(), "/healthz").body);
    return health["connections"] == 0 || health["connections"] == 1;  // the /healthz request itself
  }));
  CHECK(count(server.port(), "full") >= 1);
}
