// The echo example (cairn-echo) against real WebSocket and HTTP clients, with hibernation.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "clients.hpp"
#include "health.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;

namespace {

std::string connections(std::uint16_t port) { return http_get(port, "/getCurrentConnections").body; }

}  // namespace

TEST_CASE("echo: prefixed echoes, the seed's connection count, 426 without an upgrade") {
  TempDir dir;
  ServerProcess server({CAIRN_ECHO_PATH, "--port", "0", "--data-dir", dir.path().string()});
  auto port = server.port();
  CHECK(connections(port) == "There are 0 WebSocket clients connected to this Durable Object instance.");
  WsClient a(port, "/websocket");
  REQUIRE(a.send("hello"));
  CHECK(a.read() == "[Durable Object]: hello");
  CHECK(connections(port) == "There is 1 WebSocket client connected to this Durable Object instance.");
  WsClient b(port, "/websocket");
  REQUIRE(b.send("second"));
  CHECK(b.read() == "[Durable Object]: second");
  CHECK(connections(port) == "There are 2 WebSocket clients connected to this Durable Object instance.");

  auto plain = http_get(port, "/websocket");
  CHECK(plain.status == 426);
  CHECK(plain.body == "Durable Object expected Upgrade: websocket");
  auto usage = http_get(port, "/");
  CHECK(usage.status == 200);
  CHECK(usage.body.find("/getCurrentConnections") != std::string::npos);

  CHECK(b.close() == 1000);
  bool one = false;
  for (int i = 0; i < 100 && !one; ++i) {
    one = connections(port) == "There is 1 WebSocket client connected to this Durable Object instance.";
    if (!one) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(one);
}

TEST_CASE("echo: the count and the echo survive the instance hibernating") {
  TempDir dir;
  ServerProcess server({CAIRN_ECHO_PATH, "--port", "0", "--data-dir", dir.path().string(),
                        "--idle-timeout", "0.2"});
  auto port = server.port();
  WsClient a(port, "/websocket");
  WsClient b(port, "/websocket");
  REQUIRE(a.send("x"));
  REQUIRE(a.read());
  REQUIRE(hibernated(port));
  // Both sockets are still open and counted; a message wakes the instance.
  CHECK(connections(port) == "There are 2 WebSocket clients connected to this Durable Object instance.");
  REQUIRE(hibernated(port));
  REQUIRE(b.send("after sleep"));
  CHECK(b.read() == "[Durable Object]: after sleep");
  REQUIRE(a.send(std::string("\x00\x01", 2), true));
  CHECK(a.read() == std::string("[Durable Object]: \x00\x01", 20));
}
