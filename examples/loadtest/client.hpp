// Asynchronous HTTP/1.1 and WebSocket clients for the harness (Boost.Beast, C++20
// coroutines). Each lives on one io_context thread; nothing here blocks.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>

#include "cairn/net/maybe_tls_stream.hpp"
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cairn::load {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

struct Target {
  std::string host;  // for the Host header
  tcp::endpoint endpoint;
  // https://: the TLS context (the certificates trusted: --cacert, else the system's) and
  // the name the server's certificate must be for.
  std::shared_ptr<net::ssl::context> tls = {};
  std::string tls_name = {};
  std::vector<Target> others;  // more servers (the nodes of a cluster): connections take turns
  // Sent with every HTTP request (--header "Authorization: Bearer ...").
  std::vector<std::pair<std::string, std::string>> headers = {};
  // The server of connection `j`.
  const Target& pick(unsigned j) const {
    auto k = j % (others.size() + 1);
    return k == 0 ? *this : others[k - 1];
  }
};
// Parses "http(s)://HOST:PORT[,http(s)://HOST:PORT...]" (an optional trailing '/') and
// resolves each HOST once. https:// trusts the certificates in `cacert` (a PEM file), or the
// system's when it is empty. Throws std::invalid_argument with a readable message.
Target parse_url(const std::string& url, const std::string& cacert = {});

struct HttpResult {
  int status = 0;       // 0: no response (see error)
  std::string body;
  std::string error;    // "timeout", "connect: ...", "read: ..." when status is 0
  // "http 503", "timeout", ... : the kind an error is counted under.
  std::string kind() const { return status ? "http " + std::to_string(status) : error; }
};

// One keep-alive connection. Connects on first use and again after the server closes it
// (a request that fails on a reused connection before any byte of its answer is retried
// once on a new one, as browsers do).
// Connects `stream` to `target` (TCP, then the TLS handshake for https://); "" or the reason.
net::awaitable<std::string> connect_stream(cairn::net::MaybeTlsStream& stream, const Target& target);

class HttpConnection {
 public:
  HttpConnection(net::any_io_executor executor, const Target& target, std::chrono::milliseconds timeout);
  net::awaitable<HttpResult> request(beast::http::verb method, std::string target, std::string body = {});
  void close();

 private:
  net::awaitable<HttpResult> attempt(beast::http::verb method, const std::string& target, const std::string& body);
  const Target& target_;
  std::chrono::milliseconds timeout_;
  cairn::net::MaybeTlsStream stream_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
};

// One WebSocket client connection.
class WsConnection {
 public:
  WsConnection(net::any_io_executor executor, const Target& target);
  // Connects and upgrades at `path`; empty on success, else the reason.
  net::awaitable<std::string> connect(std::string path, std::chrono::milliseconds timeout);
  // The next text message; nullopt when the socket closed or failed (reason in `error`).
  net::awaitable<std::optional<std::string>> read(std::string& error);
  net::awaitable<std::string> send(std::string text);
  net::awaitable<void> close();
  bool is_open() const { return ws_.is_open(); }
  // Cuts the TCP connection at once (no close handshake).
  void abort();
  net::any_io_executor ws_executor() { return ws_.get_executor(); }

 private:
  const Target& target_;
  beast::websocket::stream<cairn::net::MaybeTlsStream> ws_;
  beast::flat_buffer buffer_;
};

}  // namespace cairn::load
