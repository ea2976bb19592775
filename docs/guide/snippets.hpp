// The guide's code (docs/writing-actors.md shows these blocks verbatim; guide_test.cpp
// compiles and runs them, and a test checks every C++ block of the guide is in here or in
// examples/).
#pragma once

#include <cairn/actor.hpp>
#include <cairn/context.hpp>
#include <cairn/typed.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

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

// --- Schema migrations ---
class Journal final : public cairn::Actor {
 public:
  explicit Journal(cairn::Context& ctx) : ctx_(ctx) {
    // Appended to, never edited: a database is at version N because it ran the first N.
    static const std::vector<cairn::Migration> schema{
        {"entries", "CREATE TABLE entries (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"},
        {"entry time", "ALTER TABLE entries ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0"},
        {"tags", [](cairn::Sql& sql) {
           sql.exec("CREATE TABLE tags (entry INTEGER NOT NULL REFERENCES entries(id), tag TEXT NOT NULL)");
           sql.exec("CREATE INDEX tags_by_tag ON tags (tag)");
         }},
    };
    ctx_.sql().migrate(schema);
  }
  cairn::Methods methods() override {
    return {{"write", [this](const json& args) -> cairn::Result<json> {
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.now().time_since_epoch()).count();
      ctx_.sql().exec("INSERT INTO entries (text, at_ms) VALUES (?, ?)", args.at("text").get<std::string>(), now);
      return json{{"entries", std::get<std::int64_t>(ctx_.sql().exec("SELECT count(*) AS n FROM entries").one()["n"])}};
    }}};
  }

 private:
  cairn::Context& ctx_;
};

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

// --- Typed methods ---
struct Goal {
  std::string team;
  int points = 1;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Goal, team, points)
struct Standing {
  std::string leader;
  std::int64_t points = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Standing, leader, points)

class Scoreboard final : public cairn::Actor {
 public:
  explicit Scoreboard(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS score (team TEXT PRIMARY KEY, points INTEGER NOT NULL)");
  }
  cairn::Result<Standing> score(const Goal& goal) {
    if (goal.points < 1 || goal.points > 3) return cairn::fail(cairn::Code::invalid_argument, "points: 1 to 3");
    ctx_.sql().exec("INSERT INTO score VALUES (?, ?) ON CONFLICT (team) DO UPDATE SET points = points + ?",
                    goal.team, goal.points, goal.points);
    return standing();
  }
  Standing standing() const {
    auto rows = ctx_.sql().exec("SELECT team, points FROM score ORDER BY points DESC, team LIMIT 1");
    if (rows.size() == 0) return {};
    auto top = rows.one();
    return {std::get<std::string>(top["team"]), std::get<std::int64_t>(top["points"])};
  }
  cairn::Methods methods() override {
    return cairn::typed_methods<&Scoreboard::score, &Scoreboard::standing>(*this);
  }

 private:
  cairn::Context& ctx_;
};

// Calls a Scoreboard and keeps the leader it was told of, typed on both ends.
class Commentator final : public cairn::Actor {
 public:
  explicit Commentator(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS heard (leader TEXT)");
  }
  cairn::Result<void> report(const Goal& goal) {
    return ctx_.call<&Scoreboard::score, &Commentator::heard>("SCOREBOARD", "final", goal);
  }
  cairn::Result<void> heard(const cairn::CallReply<Standing>& reply) {
    if (!reply.answer) return reply.answer.error();
    ctx_.sql().exec("INSERT INTO heard VALUES (?)", reply.answer->leader);
    return {};
  }
  std::vector<std::string> leaders() {
    std::vector<std::string> out;
    for (const auto& row : ctx_.sql().exec("SELECT leader FROM heard")) out.push_back(std::get<std::string>(row["leader"]));
    return out;
  }
  cairn::Methods methods() override {
    return cairn::typed_methods<&Commentator::report, &Commentator::heard, &Commentator::leaders>(*this);
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
