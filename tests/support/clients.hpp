// Real HTTP and WebSocket clients (Beast) for integration tests. Every operation has a
// deadline: the client runs its own io_context for at most that long, then cancels.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cairn::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

inline constexpr std::chrono::seconds io_deadline{10};

// Runs `ioc` until `done` or the deadline; on the deadline cancels `stream` and reports false.
template <class Stream>
bool run_until(net::io_context& ioc, const bool& done, Stream& stream,
               std::chrono::milliseconds limit = io_deadline) {
  ioc.restart();
  auto end = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < end) ioc.run_one_for(std::chrono::milliseconds(20));
  if (done) return true;
  beast::get_lowest_layer(stream).cancel();
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(200));
  return false;
}

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
  http::fields headers = {};
  // The value of header `name`, or "" if absent.
  std::string header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : std::string(it->value());
  }
};

// One HTTP/1.1 connection, reusable for several requests (keep-alive).
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : stream_(ioc_) {
    bool done = false;
    beast::error_code error;
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code ec) { error = ec; done = true; });
    if (!run_until(ioc_, done, stream_) || error) throw std::runtime_error("connect failed");
  }

  HttpReply request(http::verb method, const std::string& target, const std::string& body = {},
                    const std::string& content_type = "application/json") {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
    return send_raw_request(req);
  }

  template <class Request>
  HttpReply send_raw_request(Request& req) {
    bool done = false;
    beast::error_code error;
    http::async_write(stream_, req, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    if (!run_until(ioc_, done, stream_) || error) throw std::runtime_error("write failed");
    return read_reply();
  }

  // Sends bytes as they are (for malformed requests) and reads the answer.
  HttpReply raw(const std::string& bytes) {
    bool done = false;
    beast::error_code error;
    net::async_write(stream_, net::buffer(bytes), [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    if (!run_until(ioc_, done, stream_) || error) throw std::runtime_error("write failed");
    return read_reply();
  }

 private:
  HttpReply read_reply() {
    bool done = false;
    beast::error_code error;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    if (!run_until(ioc_, done, stream_) || error) {
      throw std::runtime_error("no HTTP reply: " + error.message());
    }
    auto res = parser.release();
    return HttpReply{static_cast<int>(res.result_int()), res.body(),
                     std::string(res[http::field::content_type]), res.base()};
  }

  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

inline HttpReply http_get(std::uint16_t port, const std::string& target) {
  return HttpClient(port).request(http::verb::get, target);
}
inline HttpReply http_post(std::uint16_t port, const std::string& target, const std::string& body) {
  return HttpClient(port).request(http::verb::post, target, body);
}

class WsClient {
 public:
  // `receive_buffer` > 0 sets SO_RCVBUF before connecting (a client that reads slowly).
  WsClient(std::uint16_t port, const std::string& target, int receive_buffer = 0) : ws_(ioc_) {
    bool done = false;
    beast::error_code error;
    if (receive_buffer > 0) {
      auto& socket = beast::get_lowest_layer(ws_).socket();
      socket.open(tcp::v4());
      socket.set_option(net::socket_base::receive_buffer_size(receive_buffer));
    }
    ws_.read_message_max(64 * 1024 * 1024);
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
        [&](beast::error_code ec) { error = ec; done = true; });
    if (!run_until(ioc_, done, ws_) || error) throw std::runtime_error("connect failed");
    done = false;
    ws_.async_handshake("127.0.0.1", target, [&](beast::error_code ec) { error = ec; done = true; });
    if (!run_until(ioc_, done, ws_) || error) {
      throw std::runtime_error("WebSocket handshake failed: " + error.message());
    }
  }

  // The next message, or nullopt if none arrives within `limit`.
  std::optional<std::string> read(std::chrono::milliseconds limit = io_deadline) {
    bool done = false;
    beast::error_code error;
    ws_.async_read(buffer_, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    if (!run_until(ioc_, done, ws_, limit)) return std::nullopt;
    if (error) {
      if (error == websocket::error::closed) close_code_ = static_cast<int>(ws_.reason().code);
      else if (close_code_ == 0) close_code_ = -1;  // the connection failed without a close frame
      return std::nullopt;
    }
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    return text;
  }

  // Sends one text (or binary) message; false if it could not be written in time.
  bool send(const std::string& message, bool binary = false) {
    bool done = false;
    beast::error_code error;
    ws_.binary(binary);
    ws_.async_write(net::buffer(message), [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    return run_until(ioc_, done, ws_) && !error;
  }

  // Reads until the server closes; returns its close code (-1: cut without a close frame, 0:
  // still open at the deadline). Messages read on the way are counted in `messages`.
  int read_until_closed(std::size_t* messages = nullptr,
                        std::chrono::milliseconds limit = io_deadline) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (close_code_ == 0 && std::chrono::steady_clock::now() < end) {
      auto message = read(std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now()));
      if (message && messages) ++*messages;
      if (!message && close_code_ == 0) break;
    }
    return close_code_;
  }
  int close_code() const { return close_code_; }

  // Closes with `code`; returns the code the server answered with (0 if none in time).
  int close(websocket::close_code code = websocket::close_code::normal) {
    bool done = false;
    beast::error_code error;
    ws_.async_close(code, [&](beast::error_code ec) { error = ec; done = true; });
    if (!run_until(ioc_, done, ws_) || error) return 0;
    return static_cast<int>(ws_.reason().code);
  }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  int close_code_ = 0;
};

}  // namespace cairn::testing
