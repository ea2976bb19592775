// WebSockets as actors see them, and the interface the gateway implements so the runtime
// can send to sockets it does not own. The runtime's socket table lives outside any actor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cairn {

using SocketId = std::uint64_t;

// Implemented by the gateway, one per connection. Called from any runtime thread, only with
// outputs of events that have committed; must not block (post to the socket's own thread).
class SocketSink {
 public:
  virtual ~SocketSink() = default;
  virtual void send(std::shared_ptr<const std::string> message, bool binary) = 0;
  virtual void close(int code, std::string reason) = 0;
};

class Outbox;

// A handle on one accepted WebSocket of the current instance; may be kept in a member and
// used in later events of the same instance. send() and
// close() take effect when the event commits (output gate); a rolled-back event sends nothing.
class WebSocket {
 public:
  WebSocket(SocketId id, std::vector<std::string> tags, Outbox* outbox)
      : id_(id), tags_(std::move(tags)), outbox_(outbox) {}

  SocketId id() const noexcept { return id_; }
  const std::vector<std::string>& tags() const noexcept { return tags_; }
  void send(std::string_view text);
  // One buffer shared by every socket it is sent to (for broadcasts).
  void send(std::shared_ptr<const std::string> text);
  void send_binary(std::string_view bytes);
  void close(int code = 1000, std::string_view reason = {});

 private:
  SocketId id_;
  std::vector<std::string> tags_;
  Outbox* outbox_;
};

}  // namespace cairn
