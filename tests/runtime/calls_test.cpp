// Context::call: one actor calls another without blocking; the answer (or the error) comes
// back as an event of the caller, even after it was evicted; a rolled-back event calls nobody.
#include <doctest/doctest.h>

#include <thread>

#include "cairn/testing.hpp"

using namespace cairn;
using namespace std::chrono_literals;

namespace {

// Doubles numbers and counts how often it was asked.
class Doubler final : public Actor {
 public:
  explicit Doubler(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS asked (n INTEGER)");
  }
  Methods methods() override {
    return {{"double", [this](const json& n) -> Result<json> {
               ctx_.sql().exec("INSERT INTO asked VALUES (1)");
               if (!n.is_number_integer()) return fail(Code::invalid_argument, "not an integer");
               return json(n.get<int>() * 2);
             }},
            {"asked", [this](const json&) -> Result<json> {
               return ctx_.sql().exec("SELECT count(*) AS n FROM asked").one().to_json()["n"];
             }}};
  }

 private:
  Context& ctx_;
};

// Asks the doubler and keeps every reply it gets.
class Asker final : public Actor {
 public:
  explicit Asker(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS replies (reply TEXT)");
  }
  Methods methods() override {
    return {{"ask", [this](const json& args) -> Result<json> {
               auto called = ctx_.call(args.value("binding", "DOUBLER"), "d", args.value("method", "double"),
                                       args["n"], args.value("reply", "got"), {{"asked", args["n"]}});
               if (!called) return called.error();
               if (args.value("throw", false)) throw std::runtime_error("after call");
               return json(true);
             }},
            {"got", [this](const json& reply) -> Result<json> {
               ctx_.sql().exec("INSERT INTO replies VALUES (?)", reply.dump());
               return json(true);
             }},
            {"replies", [this](const json&) -> Result<json> {
               json out = json::array();
               for (const auto& row : ctx_.sql().exec("SELECT reply FROM replies ORDER BY rowid")) {
                 out.push_back(json::parse(std::get<std::string>(row["reply"])));
               }
               return out;
             }}};
  }

 private:
  Context& ctx_;
};

Registry classes() {
  Registry registry;
  registry.add<Doubler>("DOUBLER");
  registry.add<Asker>("ASKER");
  return registry;
}

bool replies(testing::TestRuntime& t, std::size_t n) {
  for (int i = 0; i < 2000; ++i) {
    if (t.call("ASKER", "a", "replies").value().size() >= n) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST_CASE("an actor's call is answered as an event of the caller, with its context") {
  testing::TestRuntime t(classes);
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 21}}).ok());
  REQUIRE(replies(t, 1));
  CHECK(t.call("ASKER", "a", "replies").value()[0] == json{{"result", 42}, {"context", {{"asked", 21}}}});

  // The callee's error comes back as an error, with its code and status.
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", "x"}}).ok());
  REQUIRE(replies(t, 2));
  auto error = t.call("ASKER", "a", "replies").value()[1]["error"];
  CHECK(error["code"] == "invalid_argument");
  CHECK(error["status"] == 400);
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 1}, {"method", "nope"}}).ok());
  REQUIRE(replies(t, 3));
  CHECK(t.call("ASKER", "a", "replies").value()[2]["error"]["code"] == "not_found");
}

TEST_CASE("a call made by an event that rolls back is never made") {
  testing::TestRuntime t(classes);
  CHECK_FALSE(t.call("ASKER", "a", "ask", {{"n", 1}, {"throw", true}}).ok());
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 2}}).ok());
  REQUIRE(replies(t, 1));
  CHECK(t.call("DOUBLER", "d", "asked").value() == 1);  // only the committed one
  CHECK(t.call("ASKER", "a", "replies").value().size() == 1);
}

TEST_CASE("the reply reaches a caller that was evicted meanwhile") {
  testing::TestRuntime t(classes);
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 5}}).ok());
  t.evict("ASKER", "a");  // may be before or after the reply: either way it is kept
  REQUIRE(replies(t, 1));
  CHECK(t.call("ASKER", "a", "replies").value()[0]["result"] == 10);
}

TEST_CASE("a call to an unknown binding or without a reply method is refused at once") {
  testing::TestRuntime t(classes);
  auto unknown = t.call("ASKER", "a", "ask", {{"n", 1}, {"binding", "NOPE"}});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Code::not_found);
  auto no_reply = t.call("ASKER", "a", "ask", {{"n", 1}, {"reply", "missing"}});
  REQUIRE_FALSE(no_reply.ok());
  CHECK(no_reply.error().code == Code::invalid_argument);
  CHECK(t.call("DOUBLER", "d", "asked").value() == 0);
}
