// The chat example (cairn-chat) against real WebSocket clients: history on connect, a
// bounded history, senders from attachments, whispers by tag, presence across eviction.
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

std::vector<std::string> chat_args(const TempDir& dir) {
  return {CAIRN_CHAT_PATH, "--port", "0", "--data-dir", dir.path().string(), "--idle-timeout", "0.2"};
}

// The next message of `type` (others, such as presence updates, are skipped).
json next(WsClient& client, const std::string& type) {
  for (int i = 0; i < 20; ++i) {
    auto message = client.read();
    REQUIRE(message);
    auto parsed = json::parse(*message);
    if (parsed["type"] == type) return parsed;
  }
  FAIL("no message of type " << type);
  return nullptr;
}

}  // namespace

TEST_CASE("chat: messages reach the room with the sender's joined name, and history comes on connect") {
  TempDir dir;
  {
    ServerProcess server(chat_args(dir));
    auto port = server.port();
    WsClient ann(port, "/api/chat?room=lobby&user=Ann");
    CHECK(next(ann, "history")["messages"] == json::array());
    WsClient bob(port, "/api/chat?room=lobby&user=Bob");
    WsClient other(port, "/api/chat?room=elsewhere&user=Eve");
    REQUIRE(ann.send(R"({"text":"hi all","user":"Mallory"})"));  // a claimed name is ignored
    auto seen = next(bob, "message");
    CHECK(seen["user"] == "Ann");
    CHECK(seen["text"] == "hi all");
    CHECK(next(ann, "message")["id"] == seen["id"]);
    CHECK(server.stop() == 0);
  }
  ServerProcess again(chat_args(dir));
  WsClient late(again.port(), "/api/chat?room=lobby&user=Cy");
  auto history = next(late, "history")["messages"];
  REQUIRE(history.size() == 1);
  CHECK(history[0]["user"] == "Ann");
  CHECK(history[0]["text"] == "hi all");
  CHECK(json::parse(http_get(again.port(), "/api/chat/history?room=elsewhere").body) == json::array());
}

TEST_CASE("chat: the history is bounded and a newcomer gets the newest part of it") {
  TempDir dir;
  ServerProcess server(chat_args(dir));
  auto port = server.port();
  WsClient ann(port, "/api/chat?room=busy&user=Ann");
  next(ann, "history");
  for (int i = 1; i <= 105; ++i) REQUIRE(ann.send(json{{"text", "m" + std::to_string(i)}}.dump()));
  json last;
  for (int i = 0; i < 105; ++i) last = next(ann, "message");
  CHECK(last["text"] == "m105");
  auto kept = json::parse(http_get(port, "/api/chat/history?room=busy").body);
  REQUIRE(kept.size() == 100);
  CHECK(kept.front()["text"] == "m6");
  WsClient bob(port, "/api/chat?room=busy&user=Bob");
  auto history = next(bob, "history")["messages"];
  REQUIRE(history.size() == 50);
  CHECK(history.front()["text"] == "m56");
  CHECK(history.back()["text"] == "m105");
}

TEST_CASE("chat: whispers reach only the sockets tagged with the recipient, also after eviction") {
  TempDir dir;
  ServerProcess server(chat_args(dir));
  auto port = server.port();
  WsClient ann(port, "/api/chat?room=w&user=Ann");
  WsClient bob(port, "/api/chat?room=w&user=Bob");
  WsClient bob_phone(port, "/api/chat?room=w&user=Bob");
  WsClient cy(port, "/api/chat?room=w&user=Cy");
  // Let the room hibernate: tags and attachments stay with the sockets.
  REQUIRE(hibernated(port));
  REQUIRE(ann.send(R"({"to":"Bob","text":"psst"})"));
  for (auto* client : {&bob, &bob_phone, &ann}) {
    auto whisper = next(*client, "whisper");
    CHECK(whisper["from"] == "Ann");
    CHECK(whisper["text"] == "psst");
  }
  REQUIRE(cy.send(R"({"text":"public"})"));
  // Everything Cy got up to its own message: presence updates, never the whisper.
  for (int i = 0; i < 20; ++i) {
    auto message = json::parse(cy.read().value_or("{}"));
    CHECK(message["type"] != "whisper");
    if (message["type"] == "message" || message.empty()) {
      CHECK(message["user"] == "Cy");
      break;
    }
  }
  REQUIRE(cy.send(R"({"to":"Nobody","text":"x"})"));
  CHECK(next(cy, "error")["error"] == "no such user in this room");
}

TEST_CASE("chat: presence lists who is here and bad input is refused") {
  TempDir dir;
  ServerProcess server(chat_args(dir));
  auto port = server.port();
  WsClient ann(port, "/api/chat?room=p&user=Ann");
  CHECK(next(ann, "presence")["users"] == json{"Ann"});
  {
    WsClient bob(port, "/api/chat?room=p&user=Bob");
    CHECK(next(ann, "presence")["users"] == json{"Ann", "Bob"});
    CHECK(bob.close() == 1000);
  }
  CHECK(next(ann, "presence")["users"] == json{"Ann"});
  for (const char* bad : {"nope", R"({"text":""})", R"({"text":5})", "[]"}) {
    REQUIRE(ann.send(bad));
    CHECK_MESSAGE(next(ann, "error")["error"].is_string(), bad);
  }
  REQUIRE(ann.send(json{{"text", std::string(2001, 'x')}}.dump()));
  CHECK(next(ann, "error")["error"] == "a message is 1 to 2000 bytes");
  CHECK(http_get(port, "/api/chat?room=p").status == 400);            // no user
  CHECK(http_get(port, "/api/chat?room=p&user=" + std::string(33, 'u')).status == 400);
  CHECK(http_get(port, "/api/chat?room=p&user=Ann").status == 426);   // not an upgrade
  CHECK(http_get(port, "/api/chat?user=Ann").status == 400);          // no room
}
