// Runs the guide's code with the public test harness, as the guide's last section shows.
#include <cairn/admin.hpp>
#include <cairn/testing.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "../../examples/counter/counter.hpp"
#include "snippets.hpp"

using namespace std::chrono_literals;

TEST_CASE("the guide's counter counts") {
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<Counter>("COUNTER");
    return classes;
  });
  CHECK(t.call("COUNTER", "mine", "increment", {{"by", 2}}).value() == cairn::json{{"value", 2}});
  CHECK(t.fetch("COUNTER", "mine", "GET", "/value").body == R"({"value":2})");
  t.restart();  // the value is on disk
  CHECK(t.fetch("COUNTER", "mine", "GET", "/value").body == R"({"value":2})");
}

TEST_CASE("the guide's lobby and reminder behave as the guide says") {
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<guide::Lobby>("LOBBY");
    classes.add<guide::Reminder>("REMINDER");
    classes.add("NOTES", [](cairn::Context& ctx) {
      struct Notes final : cairn::Actor {
        explicit Notes(cairn::Context& c) : ctx(c) {}
        cairn::Methods methods() override {
          return {{"add", [this](const cairn::json& a) { return guide::add_note(ctx, a.get<std::string>()); }}};
        }
        cairn::Context& ctx;
      };
      return std::make_unique<Notes>(ctx);
    });
    return classes;
  });
  auto ann = t.connect("LOBBY", "main", "/ws?user=Ann");
  auto bob = t.connect("LOBBY", "main", "/ws?user=Bob");
  CHECK(t.evict("LOBBY", "main"));
  t.send(*bob, "hi");
  t.send(*ann, "ping");  // the auto-response: the lobby stays asleep
  CHECK(t.call("NOTES", "n", "add", "x").value() == cairn::json{{"notes", 1}});
  CHECK(t.call("NOTES", "n", "add", "").error().code == cairn::Code::invalid_argument);

  auto watcher = t.connect("REMINDER", "me", "/ws");
  REQUIRE(t.call("REMINDER", "me", "remind", {{"what", "tea"}, {"minutes", 5}}).ok());
  t.advance(5min);
  CHECK_FALSE(t.call("REMINDER", "me", "no-such-method").ok());  // any event runs after the alarm
  CHECK(watcher->messages() == std::vector<std::string>{"time for tea"});
  CHECK_FALSE(t.call("LOBBY", "main", "no-such-method").ok());  // after Bob's message
  // Bob's line reached both; Ann's ping got only its pong (the runtime's, so it may come first).
  CHECK(bob->messages() == std::vector<std::string>{"Bob: hi"});
  auto got = ann->messages();
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"Bob: hi", "pong"});
}

TEST_CASE("the guide's journal migrates its schema once and writes entries") {
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<guide::Journal>("JOURNAL");
    return classes;
  });
  CHECK(t.call("JOURNAL", "mine", "write", {{"text", "first"}}).value() == cairn::json{{"entries", 1}});
  t.restart();  // the steps do not run again
  CHECK(t.call("JOURNAL", "mine", "write", {{"text", "second"}}).value() == cairn::json{{"entries", 2}});
  CHECK_FALSE(t.call("JOURNAL", "mine", "write", cairn::json::object()).ok());
}

TEST_CASE("the guide's journal goes back to a moment from its history") {
  cairn::RuntimeOptions options;
  options.history_retention = 24h;  // --history-retention 24h
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<guide::Journal>("JOURNAL");
    return classes;
  }, options);
  REQUIRE(t.call("JOURNAL", "mine", "write", {{"text", "kept"}}).ok());
  t.advance(1min);
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(t.clock().now().time_since_epoch()).count();
  t.advance(1min);
  REQUIRE(t.call("JOURNAL", "mine", "write", {{"text", "a mistake"}}).ok());
  auto restored = cairn::Admin(t.runtime()).restore("JOURNAL", "mine", before);
  REQUIRE(restored.ok());
  CHECK(restored->at("changes_undone") == 1);
  CHECK(t.call("JOURNAL", "mine", "write", {{"text", "after"}}).value() == cairn::json{{"entries", 2}});
}

TEST_CASE("the guide's tally calls the counter and gets the answer as an event") {
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<Counter>("COUNTER");
    classes.add<guide::Tally>("TALLY");
    return classes;
  });
  CHECK(t.call("TALLY", "t", "bump", {{"counter", "c"}}).value() == "asked");
  bool answered = false;
  for (int i = 0; i < 2000 && !answered; ++i) {
    answered = t.call("TALLY", "t", "last").value() == cairn::json::array({{{"value", 1}}});
    if (!answered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(answered);
}

TEST_CASE("the guide's scoreboard takes typed goals and refuses a bad one naming the field") {
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<guide::Scoreboard>("SCOREBOARD");
    classes.add<guide::Commentator>("COMMENTATOR");
    return classes;
  });
  auto standing = t.call<&guide::Scoreboard::score>("SCOREBOARD", "final", guide::Goal{"blue", 2});
  REQUIRE(standing.ok());
  CHECK(standing->leader == "blue");
  CHECK(standing->points == 2);
  auto bad = t.call("SCOREBOARD", "final", "score", {{"team", "red"}, {"points", "two"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == cairn::Code::invalid_argument);
  CHECK(bad.error().message == "score's argument: field 'points' must be an integer, not a string");
  REQUIRE(t.call<&guide::Commentator::report>("COMMENTATOR", "c", guide::Goal{"red", 3}).ok());
  std::vector<std::string> leaders;
  for (int i = 0; i < 2000 && leaders.empty(); ++i) {
    leaders = t.call<&guide::Commentator::leaders>("COMMENTATOR", "c").value();
    if (leaders.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(leaders == std::vector<std::string>{"red"});
  CHECK(t.call<&guide::Scoreboard::standing>("SCOREBOARD", "final")->points == 3);
}

TEST_CASE("the guide's profile reads the claims and address the gateway hands it") {
  cairn::testing::TestRuntime t([] {
    cairn::Registry classes;
    classes.add<guide::Profile>("PROFILE");
    return classes;
  });
  CHECK(t.fetch("PROFILE", "p", "GET", "/").status == 401);
  cairn::Request request{"GET", "/", {}, {}, 0};
  request.claims = {{"sub", "alice"}};
  request.client_address = "203.0.113.9";
  request.request_id = "r-1";
  auto answer = cairn::testing::fetch(t.runtime().get("PROFILE", "p").value(), request);
  CHECK(answer.status == 200);
  CHECK(answer.body == R"({"user":"alice"})");
}
