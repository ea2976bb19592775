// WebSocketSession and SessionSink.
#include "websocket_session.hpp"

#include <spdlog/spdlog.h>

#include "cairn/limits.hpp"

namespace cairn::gateway {

namespace websocket = beast::websocket;

void SessionSink::send(std::shared_ptr<const std::string> message, bool binary) {
  lane_.deliver({shared_from_this(), std::move(message), binary, 0, {}});
}

void SessionSink::close(int code, std::string reason) {
  lane_.deliver({shared_from_this(), nullptr, false, code, std::move(reason)});
}

void SessionSink::resume_reading() {
  IoLane::Output output{shared_from_this(), nullptr, false, 0, {}};
  output.resume = true;
  lane_.deliver(std::move(output));
}

void SessionSink::on_lane(IoLane::Output& output) {
  if (output.resume) {
    if (auto session = session_.lock()) session->resume();
    return;  // a session not yet attached has never paused
  }
  bool is_close = output.message == nullptr;
  if (auto session = session_.lock()) {
    if (is_close) {
      session->close(output.code, std::move(output.reason));
    } else {
      session->send(std::move(output.message), output.binary);
    }
  } else if (!attached_) {
    early_.push_back({std::move(output.message), output.binary, is_close, output.code,
                      std::move(output.reason)});
  }
}

void IoLane::deliver(Output output) {
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    was_empty = inbox_.empty();
    inbox_.push_back(std::move(output));
  }
  // One post per burst: later outputs join the inbox the pending drain will take.
  if (was_empty) net::post(ioc_, [this] { drain(); });
}

void IoLane::drain() {
  {
    std::lock_guard lock(mutex_);
    draining_.swap(inbox_);
  }
  for (auto& output : draining_) output.sink->on_lane(output);
  draining_.clear();
  if (draining_.capacity() > 4096) std::vector<Output>().swap(draining_);
}

void SessionSink::attach(const std::shared_ptr<WebSocketSession>& session) {
  session_ = session;
  attached_ = true;
  for (auto& early : std::exchange(early_, {})) {
    if (early.is_close) {
      session->close(early.code, std::move(early.reason));
    } else {
      session->send(std::move(early.message), early.binary);
    }
  }
}

WebSocketSession::WebSocketSession(cairn::net::MaybeTlsStream&& stream, std::shared_ptr<SharedState> shared,
                                   SocketId id, std::shared_ptr<SessionSink> sink)
    : ws_(std::move(stream)), shared_(std::move(shared)), id_(id), sink_(std::move(sink)) {}

WebSocketSession::~WebSocketSession() {
  // A session destroyed without a close (I/O threads stopped) still tells the actor.
  if (!finished_) {
    shared_->runtime.socket_closed(id_, 1006, "the server stopped");
    shared_->forget(id_);
  }
}

void WebSocketSession::run(http::request<http::string_body> request) {
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(limits::max_websocket_message_bytes);
  ws_.auto_fragment(false);  // one frame, one write per message
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "cairn");
  }));
  beast::get_lowest_layer(ws_).expires_never();
  shared_->opened(id_, weak_from_this());
  sink_->attach(shared_from_this());
  ws_.async_accept(request, beast::bind_front_handler(&WebSocketSession::on_accept, shared_from_this()));
}

void WebSocketSession::on_accept(beast::error_code ec) {
  if (ec) return finish(1006, ec.message(), true);
  open_ = true;
  do_read();
  if (!queue_empty()) do_write();
  else if (close_pending_) do_close();
}

void WebSocketSession::do_read() {
  // Between messages the pending read owns only the small inline buffer: an idle socket
  // holds no heap buffer. A message that goes on is read straight into its own string.
  if (message_.empty()) {
    ws_.async_read_some(net::buffer(small_),
                        beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this(), true));
    return;
  }
  read_base_ = message_.size();
  message_.resize(read_base_ + read_chunk);
  ws_.async_read_some(net::buffer(message_.data() + read_base_, read_chunk),
                      beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this(), false));
}

void WebSocketSession::on_read(bool small, beast::error_code ec, std::size_t bytes) {
  if (!small) message_.resize(read_base_ + (ec ? 0 : bytes));
  if (ec == websocket::error::closed) {
    // The client closed cleanly; Beast has answered the close frame.
    auto reason = ws_.reason();
    int code = reason.code == websocket::close_code::none ? 1005 : static_cast<int>(reason.code);
    return finish(code, std::string(reason.reason.c_str()), false);
  }
  if (ec == websocket::error::message_too_big) {
    // Beast fails the connection with 1009 (message too big).
    return finish(1009, "a WebSocket message may be at most " +
                            std::to_string(limits::max_websocket_message_bytes) + " bytes", false);
  }
  if (ec) return finish(1006, ec.message(), ec != net::error::operation_aborted && !closing_);
  if (small) message_.assign(small_.data(), bytes);
  if (ws_.is_message_done()) {
    // Handed over whole, without a copy; the session keeps no buffer.
    auto flow = shared_->runtime.socket_message(id_, std::exchange(message_, std::string()), ws_.got_binary());
    if (flow == SocketFlow::refused) {
      // The runtime is closing it (1013): read no more, and live until the close is done.
      paused_self_ = shared_from_this();
      return;
    }
    if (flow == SocketFlow::pause) {
      // Backpressure: nothing more is read (the kernel's buffer fills, then TCP stops the
      // client) until the actor catches up and resume() is called.
      paused_ = true;
      paused_self_ = shared_from_this();
      return;
    }
  }
  do_read();
}

void WebSocketSession::resume() {
  if (!paused_) return;
  paused_ = false;
  auto self = std::move(paused_self_);  // the read below keeps the session from here on
  if (open_ && !closing_ && !finished_) do_read();
}

void WebSocketSession::send(std::shared_ptr<const std::string> message, bool binary) {
  if (closing_ || close_pending_ || finished_) return;
  if (queued_bytes_ + message->size() > limits::max_websocket_outbound_bytes) {
    spdlog::warn("socket {}: client is not reading; closing with 1008", id_);
    // Its memory goes now, not when the socket closes; only a write in flight stays.
    std::vector<Outgoing> in_flight;
    if (writing_) in_flight.push_back(std::move(queue_[head_]));
    queue_.swap(in_flight);
    head_ = 0;
    queued_bytes_ = queue_.empty() ? 0 : queue_[0].message->size();
    if (writing_) {
      // The close frame waits for that write; a client that never reads it is cut off.
      grace_ = std::make_unique<net::steady_timer>(ws_.get_executor(), limits::websocket_close_grace);
      grace_->async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->finished_ || self->closing_) return;
        beast::error_code ignored;
        beast::get_lowest_layer(self->ws_).socket().close(ignored);
      });
    }
    return close(1008, "outbound queue over " +
                           std::to_string(limits::max_websocket_outbound_bytes) +
                           " bytes (limits::max_websocket_outbound_bytes)");
  }
  queued_bytes_ += message->size();
  queue_.push_back({std::move(message), binary});
  if (open_ && !writing_) do_write();
}

void WebSocketSession::do_write() {
  writing_ = true;
  ws_.binary(queue_[head_].binary);
  ws_.async_write(net::buffer(*queue_[head_].message),
                  beast::bind_front_handler(&WebSocketSession::on_write, shared_from_this()));
}

void WebSocketSession::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) return;  // the read side reports the failure
  pop_front();
  if (!queue_empty()) return do_write();
  if (close_pending_) do_close();
}

void WebSocketSession::pop_front() {
  queued_bytes_ -= queue_[head_].message->size();
  queue_[head_].message.reset();
  if (++head_ < queue_.size()) return;
  head_ = 0;
  if (queue_.capacity() > 16) {
    std::vector<Outgoing>().swap(queue_);  // an idle socket keeps no burst-sized buffer
  } else {
    queue_.clear();
  }
}

void WebSocketSession::close(int code, std::string reason) {
  if (closing_ || close_pending_ || finished_) return;
  close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  close_pending_ = true;
  if (open_ && !writing_) do_close();
}

void WebSocketSession::do_close() {
  closing_ = true;
  if (grace_) grace_->cancel();
  close_pending_ = false;
  ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) {
    // A pending read completes with `closed` once the client answers and finishes the
    // session; a session that was not reading (backpressure) finishes here.
    if (!self->finished_) {
      self->finish(static_cast<int>(self->close_reason_.code), std::string(self->close_reason_.reason.c_str()),
                   ec && ec != websocket::error::closed);
    }
  });
}

void WebSocketSession::finish(int code, std::string reason, bool error) {
  if (finished_) return;
  finished_ = true;
  auto self = std::move(paused_self_);  // released when this returns
  if (error) {
    shared_->runtime.socket_error(id_, reason);
  } else {
    shared_->runtime.socket_closed(id_, code, std::move(reason));
  }
  shared_->forget(id_);
}

}  // namespace cairn::gateway
