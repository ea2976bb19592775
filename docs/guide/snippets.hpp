// The guide's code (docs/writing-actors.md shows these blocks verbatim; guide_test.cpp
// compiles and runs them, and a test checks every C++ block of the guide is in here or in
// examples/).
#pragma once

#include <cairn/actor.hpp>
#include <cairn/context.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace guide {

using cairn::json;

// --- SQL ---
inline cairn::Result<json> add_note(cairn::Context& ctx, const std::string& text) {
  if (text.empty()) return cairn::fail(cairn::Code::invalid_argument, "a note must not be empty");
  ctx.sql().exec("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)");
  ctx.sql().exec("INSERT INTO notes (text) VALUES (?)", text);
  auto count = ctx.sql().exec("SELECT count(*) AS n FROM notes").one();
  return json{{"notes", std::get<std::int64_t>(count["n"])}};
}

// --- WebSockets ---
class Lobby final : public cairn::Actor {
 public:
  explicit Lobby(cairn::Context& ctx) : ctx_(ctx) {
    // Answered by the runtime, even while the lobby is evicted.
    (void)ctx_.set_websocket_auto_response(cairn::AutoResponse::pair("ping", "pong"));
  }
  cairn::Response fetch(const cairn::Request& request) override {
    auto user = request.query_param("user");
    if (!user || !user->has_value()) return cairn::Response::error(cairn::Code::invalid_argument, "need ?user=");
    auto accepted = ctx_.accept_websocket(request, {"user:" + **user});
    if (!accepted) return cairn::Response::error(accepted.error());
    for (auto& socket : ctx_.websockets("user:" + **user)) {
      if (socket.id() == request.websocket) (void)socket.set_attachment({{"user", **user}});
    }
    return *accepted;
  }
  void on_message(cairn::WebSocket& socket, std::string_view message, bool) override {
    std::string from = socket.attachment().value("user", "?");  // kept across evictions
    auto line = std::make_shared<const std::string>(from + ": " + std::string(message));
    for (auto& other : ctx_.websockets()) other.send(line);   // sent after the commit
  }

 private:
  cairn::Context& ctx_;
};

// --- Alarms ---
class Reminder final : public cairn::Actor {
 public:
  explicit Reminder(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS due (what TEXT)");
  }
  cairn::Methods methods() override {
    return {{"remind", [this](const json& args) -> cairn::Result<json> {
               auto what = args.at("what").get<std::string>();
               ctx_.sql().exec("INSERT INTO due VALUES (?)", what);
               auto set = ctx_.set_alarm(what, ctx_.now() + std::chrono::minutes(args.at("minutes").get<int>()));
               if (!set) return set.error();
               return json(true);
             }}};
  }
  void on_alarm(const cairn::AlarmInfo& alarm) override {
    ctx_.sql().exec("DELETE FROM due WHERE what = ?", alarm.name);
    for (auto& socket : ctx_.websockets()) socket.send("time for " + alarm.name);
  }
  cairn::Response fetch(const cairn::Request& request) override {
    auto accepted = ctx_.accept_websocket(request);
    return accepted ? *accepted : cairn::Response::error(accepted.error());
  }

 private:
  cairn::Context& ctx_;
};

// --- Calling another actor ---
class Tally final : public cairn::Actor {
 public:
  explicit Tally(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS last (value INTEGER)");
  }
  cairn::Methods methods() override {
    return {{"bump", [this](const json& args) -> cairn::Result<json> {
               // Made once this event commits; the answer comes back as the event "bumped".
               auto called = ctx_.call("COUNTER", args.at("counter").get<std::string>(), "increment",
                                       {{"by", 1}}, "bumped");
               if (!called) return called.error();
               return json("asked");
             }},
            {"bumped", [this](const json& reply) -> cairn::Result<json> {
               if (reply.contains("error")) return cairn::fail(cairn::Code::internal, reply["error"].dump());
               ctx_.sql().exec("DELETE FROM last");
               ctx_.sql().exec("INSERT INTO last VALUES (?)", reply["result"]["value"].get<std::int64_t>());
               return json(true);
             }},
            {"last", [this](const json&) -> cairn::Result<json> {
               return ctx_.sql().exec("SELECT value FROM last").to_array();
             }}};
  }

 private:
  cairn::Context& ctx_;
};

// --- Who is calling ---
class Profile final : public cairn::Actor {
 public:
  explicit Profile(cairn::Context& ctx) : ctx_(ctx) {}
  cairn::Response fetch(const cairn::Request& request) override {
    // The gateway verified the bearer token (--auth-required covers this route): its claims.
    if (!request.claims.is_object()) {
      return cairn::Response::error(cairn::Code::unauthenticated, "sign in first");
    }
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS visits (user TEXT, address TEXT, request TEXT)");
    ctx_.sql().exec("INSERT INTO visits VALUES (?, ?, ?)", request.claims.value("sub", ""),
                    request.client_address, request.request_id);
    return cairn::Response::json(200, {{"user", request.claims.value("sub", "")}});
  }

 private:
  cairn::Context& ctx_;
};

}  // namespace guide
