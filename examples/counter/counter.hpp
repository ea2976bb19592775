// Counter: the smallest useful actor. One number per counter name, kept in the actor's own
// SQLite database. RPC `increment` ({"by": n}, default 1); HTTP GET /value and
// POST /increment. The guide walks through this class.
#pragma once

#include <cairn/actor.hpp>
#include <cairn/context.hpp>

class Counter final : public cairn::Actor {
 public:
  explicit Counter(cairn::Context& ctx) : ctx_(ctx) {  // runs again after every eviction
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS counter (value INTEGER NOT NULL)");
    if (ctx_.sql().exec("SELECT 1 FROM counter").size() == 0) ctx_.sql().exec("INSERT INTO counter VALUES (0)");
  }
  cairn::Methods methods() override {
    return {{"increment", [this](const cairn::json& args) { return increment(args); }}};
  }
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/value" && request.method == "GET") return cairn::Response::json(200, {{"value", value()}});
    if (request.path() != "/increment") return cairn::Response::error(cairn::Code::not_found, "GET /value or POST /increment");
    if (request.method != "POST") return cairn::Response::method_not_allowed("POST", "use POST /increment");
    auto body = request.body.empty() ? cairn::json::object() : cairn::json::parse(request.body, nullptr, false);
    auto result = increment(body);
    return result ? cairn::Response::json(200, *result) : cairn::Response::error(result.error());
  }

 private:
  cairn::Result<cairn::json> increment(const cairn::json& args) {
    auto by = args.is_object() ? args.value("by", cairn::json(1)) : cairn::json();
    if (!by.is_number_integer() || by.get<std::int64_t>() < -1'000'000 || by.get<std::int64_t>() > 1'000'000) {
      return cairn::fail(cairn::Code::invalid_argument, R"(the body must be {} or {"by": n} with n an integer from -1000000 to 1000000)");
    }
    ctx_.sql().exec("UPDATE counter SET value = value + ?", by.get<std::int64_t>());
    return cairn::json{{"value", value()}};
  }
  std::int64_t value() { return std::get<std::int64_t>(ctx_.sql().exec("SELECT value FROM counter").one()["value"]); }
  cairn::Context& ctx_;
};
