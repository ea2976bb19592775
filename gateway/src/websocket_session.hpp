// WebSocketSession: one accepted WebSocket. Reads messages and hands them to the runtime;
// writes what the runtime releases through its SocketSink, in order, with a bounded queue.
// Protocol pings and the close handshake are Beast's: the actor is never woken for them.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "cairn/websocket.hpp"
#include "cairn/net/maybe_tls_stream.hpp"
#include "io_lane.hpp"
#include "shared_state.hpp"

namespace cairn::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

class WebSocketSession;

// The runtime's handle on a socket: made when the upgrade request arrives, before the actor
// has answered; it holds what the actor sends until the session exists. Any thread; its
// outputs go through the session's lane.
class SessionSink final : public SocketSink, public std::enable_shared_from_this<SessionSink> {
 public:
  explicit SessionSink(IoLane& lane) : lane_(lane) {}
  void send(std::shared_ptr<const std::string> message, bool binary) override;
  void close(int code, std::string reason) override;
  void resume_reading() override;

  // On the lane's thread: an output the lane hands over.
  void on_lane(IoLane::Output& output);
  // On the lane's thread: the session is open; what came early is handed over.
  void attach(const std::shared_ptr<WebSocketSession>& session);

 private:
  struct Early {
    std::shared_ptr<const std::string> message;
    bool binary;
    bool is_close;
    int code;
    std::string reason;
  };
  IoLane& lane_;
  // Touched on the lane's thread only.
  std::weak_ptr<WebSocketSession> session_;
  std::vector<Early> early_;
  bool attached_ = false;
};

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(cairn::net::MaybeTlsStream&& stream, std::shared_ptr<SharedState> shared, SocketId id,
                   std::shared_ptr<SessionSink> sink);
  ~WebSocketSession();
  // Keeps the connection's slot (GatewayOptions::max_connections) until the session ends.
  void hold(std::shared_ptr<void> slot) { slot_ = std::move(slot); }
  // Completes the handshake for `request` (already accepted by the actor).
  void run(http::request<http::string_body> request);
  net::any_io_executor executor() { return ws_.get_executor(); }
  // On the lane's thread.
  void send(std::shared_ptr<const std::string> message, bool binary);
  void close(int code, std::string reason);
  // The actor caught up (backpressure): reads again if reading was paused.
  void resume();

 private:
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(bool small, beast::error_code ec, std::size_t bytes);
  void do_write();
  void on_write(beast::error_code ec, std::size_t bytes);
  void do_close();
  void finish(int code, std::string reason, bool error);
  bool queue_empty() const { return head_ == queue_.size(); }
  void pop_front();

  struct Outgoing {
    std::shared_ptr<const std::string> message;
    bool binary;
  };
  beast::websocket::stream<cairn::net::MaybeTlsStream> ws_;
  // Reads: idle, into small_; a message longer than that is assembled in message_.
  static constexpr std::size_t read_chunk = 16 * 1024;
  std::array<char, 64> small_;
  std::string message_;
  std::size_t read_base_ = 0;
  std::shared_ptr<SharedState> shared_;
  SocketId id_;
  std::shared_ptr<SessionSink> sink_;
  // The outbound queue: queue_[head_..] are waiting, queue_[head_] is being written. A
  // vector, not a deque: an empty std::deque costs ~600 bytes per idle socket.
  std::vector<Outgoing> queue_;
  std::size_t head_ = 0;
  std::size_t queued_bytes_ = 0;
  bool open_ = false;
  bool paused_ = false;  // not reading: the actor is behind with this socket's messages
  // While paused (or refused, until the runtime's close arrives) no operation of the session
  // is pending, and pending operations are what keep a session alive: this does instead,
  // until resume() or finish() (which the close's completion calls).
  std::shared_ptr<WebSocketSession> paused_self_;
  bool writing_ = false;
  bool close_pending_ = false;
  bool closing_ = false;
  bool finished_ = false;
  beast::websocket::close_reason close_reason_;
  // Armed only when a slow client is being closed (no timer per idle socket).
  std::unique_ptr<net::steady_timer> grace_;
  std::shared_ptr<void> slot_;
};

}  // namespace cairn::gateway
