// Echo: the WebSocket server of Cloudflare's "Build a WebSocket server" example, with
// hibernatable sockets. /websocket echoes every message prefixed "[Durable Object]: ";
// /getCurrentConnections counts the open sockets from the runtime's socket table, so the
// count stays right while the instance is evicted and after it wakes.
#pragma once

#include <cairn/actor.hpp>
#include <cairn/context.hpp>
#include <string>

class Echo final : public cairn::Actor {
 public:
  explicit Echo(cairn::Context& ctx) : ctx_(ctx) {}

  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/websocket") {
      if (!request.is_websocket_upgrade()) return text(426, "Durable Object expected Upgrade: websocket");
      auto accepted = ctx_.accept_websocket(request);
      return accepted ? *accepted : cairn::Response::error(accepted.error());
    }
    if (request.path() == "/getCurrentConnections") {
      auto n = ctx_.websockets().size();
      return text(200, n == 1 ? "There is 1 WebSocket client connected to this Durable Object instance."
                              : "There are " + std::to_string(n) +
                                    " WebSocket clients connected to this Durable Object instance.");
    }
    return text(200,
                "\nThis Durable Object supports the following endpoints:\n"
                "  /websocket\n"
                "    - Creates a WebSocket connection. Any messages sent to it are echoed with a prefix.\n"
                "  /getCurrentConnections\n"
                "    - A regular HTTP GET endpoint that returns the number of currently connected "
                "WebSocket clients.\n");
  }

  void on_message(cairn::WebSocket& socket, std::string_view message, bool binary) override {
    std::string reply = "[Durable Object]: " + std::string(message);
    if (binary) {
      socket.send_binary(reply);
    } else {
      socket.send(reply);
    }
  }

 private:
  static cairn::Response text(int status, std::string body) {
    cairn::Response response;
    response.status = status;
    response.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
    response.body = std::move(body);
    return response;
  }
  cairn::Context& ctx_;
};
