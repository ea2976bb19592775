// The public test harness (cairn/testing.hpp) on a small actor: calls, fetches, sockets,
// alarms by advancing the clock, eviction and restart.
#include "cairn/testing.hpp"

#include <doctest/doctest.h>

using namespace cairn;
using namespace std::chrono_literals;

namespace {

int reminders_constructed = 0;

// Notes are kept in SQL; "remind" sets an alarm that broadcasts the note when it is due.
class Reminders final : public Actor {
 public:
  explicit Reminders(Context& ctx) : ctx_(ctx) {
    ++reminders_constructed;
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS notes (text TEXT)");
  }
  Methods methods() override {
    return {{"remind", [this](const json& args) -> Result<json> {
               ctx_.sql().exec("INSERT INTO notes VALUES (?)", args.at("text").get<std::string>());
               auto set = ctx_.set_alarm(ctx_.now() + std::chrono::seconds(args.at("in").get<int>()));
               if (!set) return set.error();
               return json(true);
             }}};
  }
  Response fetch(const Request& request) override {
    if (request.is_websocket_upgrade()) {
      auto accepted = ctx_.accept_websocket(request);
      return accepted ? *accepted : Response::error(accepted.error());
    }
    return Response::json(200, ctx_.sql().exec("SELECT count(*) AS n FROM notes").one().to_json());
  }
  void on_message(WebSocket& socket, std::string_view message, bool) override {
    socket.send("heard " + std::string(message));
  }
  void on_alarm(const AlarmInfo&) override {
    for (const auto& row : ctx_.sql().exec("SELECT text FROM notes")) {
      for (auto& socket : ctx_.websockets()) socket.send(std::get<std::string>(row["text"]));
    }
    ctx_.sql().exec("DELETE FROM notes");
  }

 private:
  Context& ctx_;
};

Registry classes() {
  Registry registry;
  registry.add<Reminders>("REMINDERS");
  return registry;
}

}  // namespace

TEST_CASE("the test harness calls, fetches, talks on sockets and fires alarms by the clock") {
  testing::TestRuntime t(classes);
  auto socket = t.connect("REMINDERS", "me", "/ws");
  t.send(*socket, "hello");
  CHECK(t.fetch("REMINDERS", "me", "GET", "/count").body == R"({"n":0})");  // after the echo
  CHECK(socket->messages() == std::vector<std::string>{"heard hello"});

  REQUIRE(t.call("REMINDERS", "me", "remind", {{"text", "tea"}, {"in", 60}}).ok());
  t.advance(59s);
  CHECK(t.fetch("REMINDERS", "me", "GET", "/count").body == R"({"n":1})");
  t.advance(1s);
  CHECK(t.fetch("REMINDERS", "me", "GET", "/count").body == R"({"n":0})");  // the alarm ran first
  CHECK(socket->messages() == std::vector<std::string>{"heard hello", "tea"});
  CHECK_THROWS_AS(t.call("NOPE", "x", "remind"), std::invalid_argument);  // a test bug, not a result
}

TEST_CASE("the test harness evicts and restarts, and the data stays") {
  testing::TestRuntime t(classes);
  REQUIRE(t.call("REMINDERS", "me", "remind", {{"text", "a"}, {"in", 600}}).ok());
  int before = reminders_constructed;
  CHECK(t.evict("REMINDERS", "me"));
  CHECK_FALSE(t.evict("REMINDERS", "me"));
  CHECK(t.fetch("REMINDERS", "me", "GET", "/count").body == R"({"n":1})");
  CHECK(reminders_constructed == before + 1);
  t.restart();
  CHECK(t.fetch("REMINDERS", "me", "GET", "/count").body == R"({"n":1})");
  auto fired_after_restart = t.connect("REMINDERS", "me", "/ws");
  t.advance(10min);
  CHECK(t.fetch("REMINDERS", "me", "GET", "/count").body == R"({"n":0})");
  CHECK(fired_after_restart->messages() == std::vector<std::string>{"a"});
}
