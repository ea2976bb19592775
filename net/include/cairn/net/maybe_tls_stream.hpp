// MaybeTlsStream: a TCP connection, plain or TLS (OpenSSL through Beast's ssl_stream), behind
// one type, so code that speaks HTTP and WebSocket over it is written once: the gateway's
// sessions (a client's connection to a listener) and cairn-load's clients. It is an
// AsyncStream (async_read_some, async_write_some) and offers what they use of
// beast::tcp_stream (timeouts, the socket). WebSockets over it get their teardown here: TLS's
// close_notify first, then the TCP close. Header-only (cairn-load links no part of cairn).
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <memory>
#include <optional>
#include <utility>

namespace cairn::net {

class MaybeTlsStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  // Accepted connections: plain, or TLS with `context` (the server side).
  explicit MaybeTlsStream(boost::asio::ip::tcp::socket&& socket) : plain_(std::in_place, std::move(socket)) {}
  // TLS with `context` (kept alive as long as the connection: a reload of the certificate
  // makes a new context for new connections).
  MaybeTlsStream(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)), tls_(std::in_place, boost::beast::tcp_stream(std::move(socket)), *context_) {}
  // Not connected yet (the client side): plain, or TLS with `context` when it is not null.
  MaybeTlsStream(const boost::asio::any_io_executor& executor, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)) {
    if (context_) tls_.emplace(executor, *context_);
    else plain_.emplace(executor);
  }
  MaybeTlsStream(MaybeTlsStream&&) = default;

  // The client side, after a connection closed: a fresh, unconnected stream of the same kind
  // (a TLS session does not outlive its connection).
  void renew() {
    auto executor = get_executor();
    if (tls_) {
      tls_.reset();
      tls_.emplace(executor, *context_);
    } else {
      plain_.reset();
      plain_.emplace(executor);
    }
  }

  bool tls() const { return tls_.has_value(); }
  tls_stream& tls_layer() { return *tls_; }
  boost::beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }

  executor_type get_executor() { return tcp().get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }
  template <class Duration>
  void expires_after(Duration d) {
    tcp().expires_after(d);
  }
  void expires_never() { tcp().expires_never(); }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

  // What Beast's WebSocket timeouts call to drop a connection.
  friend void beast_close_socket(MaybeTlsStream& stream) { boost::beast::close_socket(stream.socket()); }

  friend void teardown(boost::beast::role_type role, MaybeTlsStream& stream, boost::beast::error_code& ec) {
    using boost::beast::websocket::teardown;
    if (stream.tls_) {
      teardown(role, *stream.tls_, ec);
    } else {
      teardown(role, *stream.plain_, ec);
    }
  }
  // Over TLS, a peer that closes TCP after the WebSocket close frames without sending TLS's
  // close_notify (browsers may) ends the close cleanly all the same: the WebSocket close
  // handshake is what counts.
  template <class Handler>
  friend void async_teardown(boost::beast::role_type role, MaybeTlsStream& stream, Handler&& handler) {
    using boost::beast::websocket::async_teardown;
    if (stream.tls_) {
      auto executor = boost::asio::get_associated_executor(handler, stream.get_executor());
      async_teardown(role, *stream.tls_,
                     boost::asio::bind_executor(
                         executor, [handler = std::forward<Handler>(handler)](boost::beast::error_code ec) mutable {
                           if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::asio::error::eof) {
                             ec = {};
                           }
                           handler(ec);
                         }));
    } else {
      async_teardown(role, *stream.plain_, std::forward<Handler>(handler));
    }
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<tls_stream> tls_;
};

}  // namespace cairn::net
