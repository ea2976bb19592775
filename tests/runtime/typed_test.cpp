// Typed RPC methods (cairn/typed.hpp): member functions as methods, arguments and results
// through nlohmann's conversions, a bad argument refused with 400 naming the field before the
// method runs, typed stubs and typed calls between actors, untyped methods beside them.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "cairn/typed.hpp"

using namespace cairn;
using json = nlohmann::json;

namespace app {

struct Seat {
  int row = 0;
  std::string letter;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Seat, row, letter)

struct Add {
  std::int64_t by = 1;
  unsigned times = 1;
  json note;  // any JSON, null included
  Seat seat;
  std::vector<std::string> tags;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Add, by, times, note, seat, tags)

struct Count {
  std::int64_t value = 0;
  std::string last_note;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Count, value, last_note)

// A type whose own from_json refuses with an exception of its own, and one with a float.
struct Code3 {
  std::string code;
};
inline void from_json(const json& j, Code3& c) {
  c.code = j.get<std::string>();
  if (c.code.size() != 3) throw std::invalid_argument("a code has 3 letters");
}
inline void to_json(json& j, const Code3& c) { j = c.code; }
struct Ratio {
  float x = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Ratio, x)

class Counter final : public Actor {
 public:
  explicit Counter(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS c (value INTEGER NOT NULL, note TEXT NOT NULL)");
    if (ctx_.sql().exec("SELECT 1 FROM c").size() == 0) ctx_.sql().exec("INSERT INTO c VALUES (0, '')");
  }

  Result<Count> increment(const Add& add) {
    if (add.by == 0) return fail(Code::conflict, "adding nothing");
    ctx_.sql().exec("UPDATE c SET value = value + ?, note = ?", add.by * static_cast<std::int64_t>(add.times),
                    add.note.is_string() ? add.note.get<std::string>() : add.seat.letter);
    return get();
  }
  Count get() const {
    auto row = ctx_.sql().exec("SELECT value, note FROM c").one();
    return Count{std::get<std::int64_t>(row["value"]), std::get<std::string>(row["note"])};
  }
  void reset() { ctx_.sql().exec("UPDATE c SET value = 0"); }
  Result<void> refuse(const json&) { return fail(Code::forbidden, "never"); }
  std::int64_t double_it(std::int64_t x) noexcept { return 2 * x; }
  std::string airport(const Code3& c) { return c.code; }
  double ratio(const Ratio& r) { return r.x; }

  Methods methods() override {
    auto table = typed_methods<&Counter::increment, &Counter::get, &Counter::reset, &Counter::refuse,
                               &Counter::double_it, &Counter::airport, &Counter::ratio>(*this);
    table.insert({"untyped", [](const json& args) -> Result<json> { return json{{"echo", args}}; }});
    return table;
  }

 private:
  Context& ctx_;
};

// Calls a Counter with Context::call and keeps what its typed reply method was told.
class Caller final : public Actor {
 public:
  explicit Caller(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS replies (value INTEGER, error TEXT, context TEXT)");
  }
  Result<void> start(const Add& add) {
    return ctx_.call<&Counter::increment, &Caller::counted>("COUNTER", "shared", add, json{{"asked", add.by}});
  }
  Result<void> counted(const CallReply<Count>& reply) {
    if (reply.answer) {
      ctx_.sql().exec("INSERT INTO replies VALUES (?, NULL, ?)", reply.answer->value, reply.context.dump());
    } else {
      ctx_.sql().exec("INSERT INTO replies VALUES (NULL, ?, ?)", std::string(code_name(reply.answer.error().code)),
                      reply.context.dump());
    }
    return {};
  }
  json replies() {
    json out = json::array();
    for (const auto& row : ctx_.sql().exec("SELECT value, error, context FROM replies ORDER BY rowid")) {
      json entry{{"context", json::parse(std::get<std::string>(row["context"]))}};
      if (auto* v = std::get_if<std::int64_t>(&row["value"])) entry["value"] = *v;
      if (auto* e = std::get_if<std::string>(&row["error"])) entry["error"] = *e;
      out.push_back(entry);
    }
    return out;
  }
  Methods methods() override { return typed_methods<&Caller::start, &Caller::counted, &Caller::replies>(*this); }

 private:
  Context& ctx_;
};

}  // namespace app

namespace {

Registry classes() {
  Registry registry;
  registry.add("COUNTER", [](Context& ctx) { return std::make_unique<app::Counter>(ctx); });
  registry.add("CALLER", [](Context& ctx) { return std::make_unique<app::Caller>(ctx); });
  return registry;
}

json add_json(json seat = {{"row", 3}, {"letter", "C"}}) {
  return json{{"by", 2}, {"times", 1}, {"note", nullptr}, {"seat", std::move(seat)}, {"tags", json::array()}};
}

}  // namespace

TEST_CASE("a method's name is its member function's name") {
  static_assert(method_name<&app::Counter::increment> == "increment");
  static_assert(method_name<&app::Counter::double_it> == "double_it");
  static_assert(std::is_same_v<method_result_t<&app::Counter::increment>, app::Count>);
  static_assert(std::is_same_v<method_arg_t<&app::Counter::get>, void>);
  static_assert(std::is_same_v<method_arg_t<&app::Caller::counted>, CallReply<app::Count>>);
  CHECK(std::string(method_name<&app::Caller::counted>) == "counted");
}

TEST_CASE("typed methods take and give their own types and untyped ones work beside them") {
  testing::TestRuntime rt(classes);
  auto count = rt.call<&app::Counter::increment>("COUNTER", "a", app::Add{5, 2, "hi", {1, "A"}, {}});
  REQUIRE(count.ok());
  CHECK(count->value == 10);
  CHECK(count->last_note == "hi");
  CHECK(rt.call<&app::Counter::get>("COUNTER", "a")->value == 10);
  CHECK(rt.call<&app::Counter::double_it>("COUNTER", "a", 21).value() == 42);
  REQUIRE(rt.call<&app::Counter::reset>("COUNTER", "a").ok());
  CHECK(rt.call<&app::Counter::get>("COUNTER", "a")->value == 0);
  // Untyped callers see JSON: what the typed method's conversions make of it.
  auto raw = rt.call("COUNTER", "a", "increment", add_json());
  REQUIRE(raw.ok());
  CHECK(*raw == json{{"value", 2}, {"last_note", "C"}});
  CHECK(rt.call("COUNTER", "a", "get", json::object())->at("value") == 2);
  CHECK(rt.call("COUNTER", "a", "untyped", json{1, 2}).value() == json{{"echo", {1, 2}}});
  CHECK(rt.call("COUNTER", "a", "reset").value().is_null());
}

TEST_CASE("a method's own error reaches the caller with its code") {
  testing::TestRuntime rt(classes);
  auto refused = rt.call<&app::Counter::increment>("COUNTER", "a", app::Add{0, 1, {}, {}, {}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Code::conflict);
  CHECK(refused.error().message == "adding nothing");
  auto never = rt.call("COUNTER", "a", "refuse", json::object());
  REQUIRE_FALSE(never.ok());
  CHECK(never.error().code == Code::forbidden);
}

TEST_CASE("a bad argument is invalid_argument naming the field and the method does not run") {
  testing::TestRuntime rt(classes);
  struct Case {
    json args;
    std::string says;
  };
  auto without = [](const char* key) {
    auto args = add_json();
    args.erase(key);
    return args;
  };
  auto with = [](const char* key, json value) {
    auto args = add_json();
    args[key] = std::move(value);
    return args;
  };
  std::vector<Case> cases{
      {"three", "increment's argument: the argument must be an object, not a string"},
      {json::array(), "increment's argument: the argument must be an object, not an array"},
      {without("by"), "field 'by' is missing"},
      {with("by", "2"), "field 'by' must be an integer, not a string"},
      {with("times", -1), "field 'times' cannot be -1 (it would read as 4294967295)"},
      {with("by", 2.5), "field 'by' cannot be 2.5 (it would read as 2)"},
      {add_json(json{{"row", "3"}, {"letter", "C"}}), "field 'seat.row' must be an integer, not a string"},
      {add_json(json{{"letter", "C"}}), "field 'seat.row' is missing"},
      {add_json(json{{"row", 3}, {"letter", nullptr}}), "field 'seat.letter' must be a string, not null"},
      {add_json("3C"), "field 'seat' must be an object, not a string"},
      {with("tags", json{"a", 1}), "increment's argument: "},
      {with("tags", "a"), "field 'tags' must be an array, not a string"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args.dump());
    auto refused = rt.call("COUNTER", "a", "increment", c.args);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == Code::invalid_argument);
    CHECK(http_status(refused.error().code) == 400);
    CHECK_MESSAGE(refused.error().message.find(c.says) != std::string::npos, refused.error().message);
  }
  // A method without an argument takes none; one with a plain argument says what it wanted.
  CHECK(rt.call("COUNTER", "a", "get", json{{"x", 1}}).error().message ==
        "get takes no argument, and was given an object");
  auto plain = rt.call("COUNTER", "a", "double_it", "21");
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.error().message == "double_it's argument: the argument must be an integer, not a string");
  CHECK(rt.call("COUNTER", "a", "double_it", 2.5).error().message ==
        "double_it's argument: the argument cannot be 2.5 (it would read as 2)");
  // A from_json of the type's own that throws is a 400 with its message; a decimal read into
  // a float is what it reads as, not a loss.
  auto code = rt.call("COUNTER", "a", "airport", "ZRHX");
  REQUIRE_FALSE(code.ok());
  CHECK(code.error().code == Code::invalid_argument);
  CHECK(code.error().message == "airport's argument: a code has 3 letters");
  CHECK(rt.call("COUNTER", "a", "airport", "ZRH").value() == "ZRH");
  CHECK(rt.call("COUNTER", "a", "ratio", json{{"x", 0.1}}).value().get<double>() == doctest::Approx(0.1));
  // Nothing ran: the count is where it started.
  CHECK(rt.call<&app::Counter::get>("COUNTER", "a")->value == 0);
}

TEST_CASE("a typed stub calls asynchronously with the method's types") {
  testing::TestRuntime rt(classes);
  auto stub = rt.runtime().get("COUNTER", "s");
  REQUIRE(stub.ok());
  std::promise<Result<app::Count>> counted;
  stub->call<&app::Counter::increment>(app::Add{3, 1, {}, {2, "B"}, {}},
                                       [&](Result<app::Count> count) { counted.set_value(std::move(count)); });
  auto count = counted.get_future().get();
  REQUIRE(count.ok());
  CHECK(count->value == 3);
  CHECK(count->last_note == "B");
  std::promise<Result<void>> reset;
  stub->call<&app::Counter::reset>([&](Result<void> done) { reset.set_value(std::move(done)); });
  CHECK(reset.get_future().get().ok());
  CHECK(testing::call<&app::Counter::get>(*stub)->value == 0);
  CHECK(testing::call<&app::Counter::double_it>(*stub, std::int64_t{4}).value() == 8);
}

TEST_CASE("two typed methods of one name are refused when the table is made") {
  struct Twice {
    int f(int x) { return x; }
    int g(int x) { return x; }
  };
  Twice twice;
  auto distinct = [&] { return typed_methods<&Twice::f, &Twice::g>(twice).size(); };
  auto same = [&] { return typed_methods<&Twice::f, &Twice::f>(twice).size(); };
  CHECK(distinct() == 2);
  CHECK_THROWS_AS(same(), std::logic_error);
}

TEST_CASE("a reply whose answer does not read as the declared type still reaches the reply method as an error") {
  auto reply = json{{"result", {{"value", "not a number"}, {"last_note", ""}}}, {"context", 7}}.get<CallReply<app::Count>>();
  REQUIRE_FALSE(reply.answer.ok());
  CHECK(reply.answer.error().code == Code::internal);
  CHECK(reply.context == 7);
  auto failed = json{{"error", {{"code", "conflict"}, {"message", "taken"}, {"status", 409}}}}.get<CallReply<app::Count>>();
  CHECK(failed.answer.error().code == Code::conflict);
  CHECK(failed.answer.error().message == "taken");
}

TEST_CASE("an answer that does not read back as the declared type is an internal error") {
  // A caller built against another version of Count than the class that answered.
  auto answer = detail::decode_answer<app::Count>(json{{"value", "x"}, {"last_note", ""}}, "get");
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().code == Code::internal);
  CHECK(answer.error().message == "get's answer: field 'value' must be an integer, not a string");
}

TEST_CASE("typed calls between actors: the reply method gets a CallReply of the callee's result") {
  testing::TestRuntime rt(classes);
  REQUIRE(rt.call<&app::Caller::start>("CALLER", "x", app::Add{4, 1, {}, {1, "D"}, {}}).ok());
  REQUIRE(rt.call<&app::Caller::start>("CALLER", "x", app::Add{0, 1, {}, {}, {}}).ok());
  json replies;
  for (int i = 0; i < 200; ++i) {
    replies = rt.call("CALLER", "x", "replies").value();
    if (replies.size() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(replies.size() == 2);
  CHECK(replies[0] == json{{"value", 4}, {"context", {{"asked", 4}}}});
  CHECK(replies[1] == json{{"error", "conflict"}, {"context", {{"asked", 0}}}});
}
