// WebSockets as actors see them, and the interface the gateway implements so the runtime
// can send to sockets it does not own. The runtime's socket table lives outside any actor:
// a socket outlives the instance that accepted it (hibernation), keeping its tags and its
// attachment, and the next event on it wakes the instance again.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/result.hpp"

namespace cairn {

using SocketId = std::uint64_t;

// Implemented by the gateway, one per connection. Called from any runtime thread, only with
// outputs of events that have committed (or auto-responses); must not block (post to the
// socket's own thread).
class SocketSink {
 public:
  virtual ~SocketSink() = default;
  virtual void send(std::shared_ptr<const std::string> message, bool binary) = 0;
  virtual void close(int code, std::string reason) = 0;
  // The actor has caught up with this socket's messages: a gateway that stopped reading it
  // (Runtime::socket_message answered SocketFlow::pause) reads again. Any thread, at most
  // once per pause; it may run while the runtime holds its own locks, so it must neither
  // block nor call back into the runtime (post to the socket's thread).
  virtual void resume_reading() {}
};

// What Runtime::socket_message tells the gateway about the socket it read from.
enum class SocketFlow {
  read_on,  // go on reading
  pause,    // stop reading it until SocketSink::resume_reading(): the actor has
            // limits::max_socket_messages_waiting of its messages still to run
  refused,  // the message was dropped and the runtime is closing the socket: with 1013 (try
            // again later) when the actor's queue is full (RuntimeOptions::max_queued_events)
};

namespace detail {
struct SocketEntry;
}
class Outbox;

// A message the runtime answers itself, without waking the actor (Durable Objects'
// setWebSocketAutoResponse, and more). Set with Context::set_websocket_auto_response; kept
// while the instance is evicted. Either rule, or both, may be set.
struct AutoResponse {
  // A text message equal to `request` is answered with `response`.
  struct Exact {
    std::string request;
    std::string response;
  };
  // A text message that is a JSON object whose member `field` equals `value` is answered
  // with `reply` (a JSON object) plus, for each (name, fallback) of `echo`, the request's
  // member `name` (or `fallback` when the request has none).
  struct JsonRule {
    std::string field;
    nlohmann::json value;
    nlohmann::json reply;
    std::vector<std::pair<std::string, nlohmann::json>> echo;
  };
  std::optional<Exact> exact;
  std::optional<JsonRule> json_rule;

  // The string pair of Durable Objects: `request` -> `response`.
  static AutoResponse pair(std::string request, std::string response);
  // The heartbeat of the realtime-map seed: {"type":"ping","id":I,"clientTime":T} is answered
  // {"type":"pong","id":I,"clientTime":T} ("" and 0 when the ping lacks them).
  static AutoResponse heartbeat();

  // The answer to text message `message`, or nullopt when no rule matches.
  std::optional<std::string> answer(std::string_view message) const;
  // invalid_argument (quoting limits::max_auto_response_bytes) for an empty request, a side
  // over the limit, a JSON rule without a field or whose reply is not an object.
  Result<void> validate() const;
};

// A handle on one accepted WebSocket of the current instance. Valid during the event that
// got it; get it again (Context::websockets) in later events. send() and close() take effect
// when the event commits (output gate); a rolled-back event sends nothing and its
// set_attachment() calls are undone.
class WebSocket {
 public:
  WebSocket(std::shared_ptr<detail::SocketEntry> entry, Outbox* outbox);

  SocketId id() const noexcept;
  const std::vector<std::string>& tags() const noexcept;

  void send(std::string_view text);
  // One buffer shared by every socket it is sent to (for broadcasts).
  void send(std::shared_ptr<const std::string> text);
  void send_binary(std::string_view bytes);
  // Throws std::invalid_argument for a code other than 1000 or 3000-4999, or a reason over
  // 123 bytes (RFC 6455).
  void close(int code = 1000, std::string_view reason = {});

  // The value last given to set_attachment() (null if none); survives eviction.
  nlohmann::json attachment() const;
  // invalid_argument (quoting limits::max_websocket_attachment_bytes) if the value's JSON is
  // larger than that; the old attachment then stays.
  [[nodiscard]] Result<void> set_attachment(const nlohmann::json& value);

 private:
  std::shared_ptr<detail::SocketEntry> entry_;
  Outbox* outbox_;
};

}  // namespace cairn
