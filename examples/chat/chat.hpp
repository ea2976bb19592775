// ChatRoom: one instance per room. Sockets are tagged "user:<name>" and carry the user in
// their attachment, so both survive eviction; messages are kept in the room's SQLite with a
// bounded history (the newest max_kept), and the newest on_connect of them are sent to each
// new socket. Whispers reach the sockets tagged with the recipient. An example of tags and
// attachments together.
#pragma once

#include <cairn/actor.hpp>
#include <cairn/context.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <string>

class ChatRoom final : public cairn::Actor {
 public:
  static constexpr int max_kept = 100;       // messages kept per room
  static constexpr int on_connect = 50;      // sent to a new socket
  static constexpr std::size_t max_text_bytes = 2000;
  static constexpr std::size_t max_user_bytes = 32;

  explicit ChatRoom(cairn::Context& ctx) : ctx_(ctx) {
    // The page's heartbeat (/cairn-client.js) is answered without waking an evicted room.
    (void)ctx_.set_websocket_auto_response(cairn::AutoResponse::heartbeat());
    ctx_.sql().exec(
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, "
        "text TEXT NOT NULL, at INTEGER NOT NULL)");
  }

  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/api/chat/history") return cairn::Response::json(200, history(max_kept));
    auto user = request.query_param("user");
    if (!user || !user->has_value() || !valid_user(**user)) {
      return cairn::Response::error(cairn::Code::invalid_argument,
                                    "?user= must be 1 to 32 bytes without control characters");
    }
    if (!request.is_websocket_upgrade()) {
      return cairn::Response::json(426, {{"error", "/api/chat expects a WebSocket upgrade"}, {"status", 426}});
    }
    auto accepted = ctx_.accept_websocket(request, {"user:" + **user});
    if (!accepted) return cairn::Response::error(accepted.error());
    for (auto& socket : ctx_.websockets()) {
      if (socket.id() != request.websocket) continue;
      if (auto set = socket.set_attachment({{"user", **user}}); !set) return cairn::Response::error(set.error());
      socket.send(cairn::json{{"type", "history"}, {"messages", history(on_connect)}}.dump());
    }
    broadcast_presence();
    return *accepted;
  }

  void on_message(cairn::WebSocket& socket, std::string_view message, bool binary) override {
    auto error = [&](const std::string& what) { socket.send(cairn::json{{"type", "error"}, {"error", what}}.dump()); };
    auto data = binary ? cairn::json() : cairn::json::parse(message, nullptr, false);
    if (!data.is_object() || !data.contains("text") || !data["text"].is_string()) {
      return error(R"(send {"text": "..."} or {"text": "...", "to": "<user>"})");
    }
    const auto& text = data["text"].get_ref<const std::string&>();
    if (text.empty() || text.size() > max_text_bytes) return error("a message is 1 to 2000 bytes");
    // The sender is who the socket joined as (its attachment), never what the message claims.
    std::string user = socket.attachment().value("user", "");
    auto at = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.now().time_since_epoch()).count();
    if (data.contains("to")) {
      if (!data["to"].is_string() || ctx_.websockets("user:" + data["to"].get<std::string>()).empty()) {
        return error("no such user in this room");
      }
      auto whisper = std::make_shared<const std::string>(
          cairn::json{{"type", "whisper"}, {"from", user}, {"to", data["to"]}, {"text", text}, {"at", at}}.dump());
      for (auto& target : ctx_.websockets("user:" + data["to"].get<std::string>())) target.send(whisper);
      socket.send(whisper);
      return;
    }
    auto id = std::get<std::int64_t>(
        ctx_.sql().exec("INSERT INTO messages (user, text, at) VALUES (?, ?, ?) RETURNING id", user, text, at)
            .one()["id"]);
    ctx_.sql().exec("DELETE FROM messages WHERE id <= ?", id - max_kept);  // the bound
    auto out = std::make_shared<const std::string>(
        cairn::json{{"type", "message"}, {"id", id}, {"user", user}, {"text", text}, {"at", at}}.dump());
    for (auto& other : ctx_.websockets()) other.send(out);
  }

  void on_close(cairn::WebSocket&, int, std::string_view) override { broadcast_presence(); }
  void on_error(cairn::WebSocket&, std::string_view) override { broadcast_presence(); }

 private:
  static bool valid_user(const std::string& user) {
    if (user.empty() || user.size() > max_user_bytes) return false;
    for (unsigned char c : user) {
      if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
  }
  cairn::json history(int count) {
    cairn::json out = cairn::json::array();
    for (const auto& row : ctx_.sql().exec(
             "SELECT id, user, text, at FROM (SELECT * FROM messages ORDER BY id DESC LIMIT ?) ORDER BY id", count)) {
      out.push_back(row.to_json());
    }
    return out;
  }
  // Who is here: from the sockets' attachments, which survive eviction.
  void broadcast_presence() {
    std::set<std::string> users;
    auto sockets = ctx_.websockets();
    for (auto& socket : sockets) users.insert(socket.attachment().value("user", ""));
    users.erase("");
    auto out = std::make_shared<const std::string>(cairn::json{{"type", "presence"}, {"users", users}}.dump());
    for (auto& socket : sockets) socket.send(out);
  }
  cairn::Context& ctx_;
};
