// Real HTTP and WebSocket clients (Beast) for integration tests. Every operation has a
// deadline: the client runs its own io_context for at most that long, then cancels.
// Compiled once (clients.cpp, library cairn_test_clients): the tests that use them include
// no Beast I/O code, which keeps their compile (above all under ASan) short.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

inline constexpr std::chrono::seconds io_deadline{10};

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers = {};
  // The value of header `name` (case-insensitive), or "" if absent.
  std::string header(std::string_view name) const;
};

// One HTTP/1.1 connection, reusable for several requests (keep-alive). Throws
// std::runtime_error if it cannot connect, write or read a reply within io_deadline.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpReply request(http::verb method, const std::string& target, const std::string& body = {},
                    const std::string& content_type = "application/json");
  // The same with any method name, known to HTTP or not ("BREW").
  HttpReply request(const std::string& method, const std::string& target, const std::string& body = {});
  // A header every later request of this client carries (e.g. Authorization).
  void header(std::string name, std::string value);
  // Sends bytes as they are (for malformed requests) and reads the answer.
  HttpReply raw(const std::string& bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

HttpReply http_get(std::uint16_t port, const std::string& target);
HttpReply http_post(std::uint16_t port, const std::string& target, const std::string& body);

class WsClient {
 public:
  // `receive_buffer` > 0 sets SO_RCVBUF before connecting (a client that reads slowly).
  // Throws std::runtime_error if the connection or the handshake fails.
  WsClient(std::uint16_t port, const std::string& target, int receive_buffer = 0);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // The next message, or nullopt if none arrives within `limit` (a read that times out
  // leaves the stream unusable, as Beast cancels it) or the socket closed.
  std::optional<std::string> read(std::chrono::milliseconds limit = io_deadline);
  // Sends one text (or binary) message; false if it could not be written in time.
  bool send(const std::string& message, bool binary = false);
  // Reads until the server closes; returns its close code (-1: cut without a close frame, 0:
  // still open at the deadline). Messages read on the way are counted in `messages`.
  int read_until_closed(std::size_t* messages = nullptr, std::chrono::milliseconds limit = io_deadline);
  int close_code() const;
  // Closes with `code`; returns the code the server answered with (0 if none in time).
  int close(websocket::close_code code = websocket::close_code::normal);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A WebSocket over TLS (wss://127.0.0.1:port) that trusts only the certificates in
// `ca_file` and checks that the server's certificate is for 127.0.0.1. Throws
// std::runtime_error naming what failed (connect, TLS handshake, WebSocket handshake).
class WssClient {
 public:
  WssClient(std::uint16_t port, const std::string& target, const std::string& ca_file);
  ~WssClient();
  WssClient(const WssClient&) = delete;
  WssClient& operator=(const WssClient&) = delete;

  std::optional<std::string> read(std::chrono::milliseconds limit = io_deadline);
  bool send(const std::string& message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::testing
