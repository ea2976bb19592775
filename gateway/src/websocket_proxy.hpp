// WebSocketProxy (cluster mode): a WebSocket whose actor runs on another node. The client's
// upgrade is first made to the owner's internal listener (connect_upstream); once the owner's
// actor has accepted it, the client's handshake is completed here and messages are relayed
// both ways, one at a time in each direction: a message is read from one side only after the
// previous one was written to the other, so a slow reader stops the writer through TCP
// exactly as it would stop it on the owner itself (where the owner's own limits apply: its
// outbound queue bound closes a client that does not read with 1008, its backpressure stops
// reading a client whose actor is behind). Close codes pass through unchanged both ways; a
// client that vanishes cuts the owner's connection (its actor sees an error, as for a local
// client), and an owner that vanishes closes the client with 1012 (reconnect).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cairn/result.hpp"
#include "cairn/net/maybe_tls_stream.hpp"
#include "shared_state.hpp"

namespace cairn::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

class WebSocketProxy : public std::enable_shared_from_this<WebSocketProxy> {
 public:
  using Upstream = beast::websocket::stream<beast::tcp_stream>;
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  // What came of an upgrade sent to the owner: `upstream` is open (with the owner's 101 in
  // `response`), or the owner declined (`response` is its answer, `upstream` null), or
  // `error` says why there is no answer: Code::unavailable if the owner could not be
  // reached (nothing reached its actor: safe to try again), Code::timeout otherwise.
  struct Attempt {
    std::unique_ptr<Upstream> upstream;
    std::optional<Response> response;
    std::optional<Error> error;
  };
  // Opens a connection to host:port and sends it `request`'s upgrade with the client's
  // headers and the cluster's token, by `deadline`; `done` runs on `ioc`'s thread.
  static void connect_upstream(net::io_context& ioc, const std::string& host, const std::string& port,
                               const Request& request, const std::string& token,
                               std::chrono::steady_clock::time_point deadline, std::function<void(Attempt)> done);

  WebSocketProxy(cairn::net::MaybeTlsStream&& client, std::unique_ptr<Upstream> upstream, std::shared_ptr<SharedState> shared);
  ~WebSocketProxy();
  // Keeps the connection's slot (GatewayOptions::max_connections) until the proxy ends.
  void hold(std::shared_ptr<void> slot) { slot_ = std::move(slot); }
  // Completes the client's handshake for `request`; `accepted` is the owner's 101.
  void run(Request request, const Response& accepted);
  net::any_io_executor executor() { return client_.get_executor(); }
  // On the lane's thread: closes both sides with `code` (the gateway is stopping).
  void close(int code, std::string reason);

 private:
  void read_client();
  void on_client_read(beast::error_code ec);
  void on_upstream_written(beast::error_code ec);
  void read_upstream();
  void on_upstream_read(beast::error_code ec);
  void on_client_written(beast::error_code ec);
  void close_client(int code, std::string reason);
  void close_upstream(int code, std::string reason);
  void cut_upstream();

  beast::websocket::stream<cairn::net::MaybeTlsStream> client_;
  std::unique_ptr<Upstream> upstream_;
  std::shared_ptr<SharedState> shared_;
  std::shared_ptr<void> slot_;
  std::uint64_t id_ = 0;  // in SharedState::proxies
  beast::flat_buffer from_client_;
  beast::flat_buffer from_upstream_;
  bool open_ = false;
  // Per side: a write in flight, a close waiting for it, a close started, the side finished
  // (closed or failed: nothing more is written to it).
  struct Side {
    bool writing = false;
    bool close_pending = false;
    bool closing = false;
    bool done = false;
    beast::websocket::close_reason reason;
  };
  Side client_side_;
  Side upstream_side_;
};

}  // namespace cairn::gateway
