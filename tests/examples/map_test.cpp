// The map example (cairn-map) against real WebSocket clients: the pin is broadcast, kept,
// sent to newcomers; the heartbeat never wakes the map; bad messages get an error.
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

std::vector<std::string> map_args(const TempDir& dir) {
  return {CAIRN_MAP_PATH, "--port", "0", "--data-dir", dir.path().string(), "--idle-timeout", "0.2"};
}

json next(WsClient& client) {
  auto message = client.read();
  REQUIRE(message);
  return json::parse(*message);
}

int live(std::uint16_t port) { return json::parse(http_get(port, "/healthz").body)["live_instances"]; }

}  // namespace

TEST_CASE("map: setPin is broadcast to every client of that map, kept, and sent to newcomers") {
  TempDir dir;
  {
    ServerProcess server(map_args(dir));
    auto port = server.port();
    WsClient a(port, "/api/map?id=team");
    WsClient b(port, "/api/map?id=team");
    WsClient elsewhere(port, "/api/map");  // "default-map"
    REQUIRE(a.send(R"({"type":"setPin","location":{"lat":48.85,"lng":2.35}})"));
    json expected{{"type", "pinUpdate"}, {"location", {{"lat", 48.85}, {"lng", 2.35}}}};
    CHECK(next(a) == expected);
    CHECK(next(b) == expected);
    REQUIRE(elsewhere.send(R"({"type":"setPin","location":{"lat":-33.9,"lng":151.2}})"));
    CHECK(next(elsewhere)["location"]["lat"] == -33.9);
    WsClient late(port, "/api/map?id=team");
    CHECK(next(late) == expected);  // the current pin, on connect
    CHECK(server.stop() == 0);
  }
  ServerProcess again(map_args(dir));
  WsClient after_restart(again.port(), "/api/map?id=team");
  CHECK(next(after_restart)["location"] == json{{"lat", 48.85}, {"lng", 2.35}});
}

TEST_CASE("map: the heartbeat is answered without waking the map, bad messages get an error") {
  TempDir dir;
  ServerProcess server(map_args(dir));
  auto port = server.port();
  WsClient client(port, "/api/map?id=quiet");
  REQUIRE(hibernated(port));
  REQUIRE(client.send(R"({"type":"ping","id":"p1","clientTime":42})"));
  CHECK(next(client) == json{{"type", "pong"}, {"id", "p1"}, {"clientTime", 42}});
  CHECK(live(port) == 0);  // still asleep
  for (const char* bad : {"not json", R"({"type":"setPin"})", R"({"type":"setPin","location":{"lat":91,"lng":0}})",
                          R"({"type":"setPin","location":{"lat":"1","lng":0}})", R"({"type":"dance"})", "[]"}) {
    REQUIRE(client.send(bad));
    auto reply = next(client);
    CHECK_MESSAGE(reply["type"] == "error", bad);
    CHECK(reply["error"].is_string());
  }
  auto plain = http_get(port, "/api/map?id=quiet");
  CHECK(plain.status == 426);
  CHECK(http_get(port, "/api/map?id=").status == 400);
  CHECK(http_get(port, "/").status == 200);  // the page
}
