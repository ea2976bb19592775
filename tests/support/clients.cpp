// The test clients: Beast clients driven by a private io_context with deadlines.
#include "clients.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <stdexcept>

namespace cairn::testing {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

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

bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (same_name(key, name)) return value;
  }
  return {};
}

struct HttpClient::Impl {
  explicit Impl(std::uint16_t port) : stream(ioc) {
    bool done = false;
    beast::error_code error;
    stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                         [&](beast::error_code ec) { error = ec; done = true; });
    if (!run_until(ioc, done, stream) || error) throw std::runtime_error("connect failed");
  }

  HttpReply send(http::request<http::string_body>& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
    bool done = false;
    beast::error_code error;
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    if (!run_until(ioc, done, stream) || error) throw std::runtime_error("write failed");
    return read_reply();
  }

  HttpReply read_reply() {
    bool done = false;
    beast::error_code error;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
    if (!run_until(ioc, done, stream) || error) {
      throw std::runtime_error("no HTTP reply: " + error.message());
    }
    auto res = parser.release();
    HttpReply reply{static_cast<int>(res.result_int()), res.body(),
                    std::string(res[http::field::content_type])};
    for (const auto& field : res) {
      reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    return reply;
  }

  net::io_context ioc;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::vector<std::pair<std::string, std::string>> headers;
};

HttpClient::HttpClient(std::uint16_t port) : impl_(std::make_unique<Impl>(port)) {}

void HttpClient::header(std::string name, std::string value) {
  impl_->headers.emplace_back(std::move(name), std::move(value));
}
HttpClient::~HttpClient() = default;

HttpReply HttpClient::request(http::verb method, const std::string& target, const std::string& body,
                              const std::string& content_type) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) req.set(http::field::content_type, content_type);
  req.body() = body;
  req.prepare_payload();
  return impl_->send(req);
}

HttpReply HttpClient::request(const std::string& method, const std::string& target, const std::string& body) {
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1");
  req.body() = body;
  req.prepare_payload();
  return impl_->send(req);
}

HttpReply HttpClient::raw(const std::string& bytes) {
  bool done = false;
  beast::error_code error;
  net::async_write(impl_->stream, net::buffer(bytes), [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
  if (!run_until(impl_->ioc, done, impl_->stream) || error) throw std::runtime_error("write failed");
  return impl_->read_reply();
}

HttpReply http_get(std::uint16_t port, const std::string& target) {
  return HttpClient(port).request(http::verb::get, target);
}
HttpReply http_post(std::uint16_t port, const std::string& target, const std::string& body) {
  return HttpClient(port).request(http::verb::post, target, body);
}

struct WsClient::Impl {
  Impl() : ws(ioc) {}
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
  int close_code = 0;
};

WsClient::WsClient(std::uint16_t port, const std::string& target, int receive_buffer)
    : impl_(std::make_unique<Impl>()) {
  auto& ws = impl_->ws;
  bool done = false;
  beast::error_code error;
  if (receive_buffer > 0) {
    auto& socket = beast::get_lowest_layer(ws).socket();
    socket.open(tcp::v4());
    socket.set_option(net::socket_base::receive_buffer_size(receive_buffer));
  }
  ws.read_message_max(64 * 1024 * 1024);
  beast::get_lowest_layer(ws).async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                            [&](beast::error_code ec) { error = ec; done = true; });
  if (!run_until(impl_->ioc, done, ws) || error) throw std::runtime_error("connect failed");
  done = false;
  ws.async_handshake("127.0.0.1", target, [&](beast::error_code ec) { error = ec; done = true; });
  if (!run_until(impl_->ioc, done, ws) || error) {
    throw std::runtime_error("WebSocket handshake failed: " + error.message());
  }
}

WsClient::~WsClient() = default;

std::optional<std::string> WsClient::read(std::chrono::milliseconds limit) {
  auto& s = *impl_;
  bool done = false;
  beast::error_code error;
  s.ws.async_read(s.buffer, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
  if (!run_until(s.ioc, done, s.ws, limit)) return std::nullopt;
  if (error) {
    if (error == websocket::error::closed) s.close_code = static_cast<int>(s.ws.reason().code);
    else if (s.close_code == 0) s.close_code = -1;  // the connection failed without a close frame
    return std::nullopt;
  }
  std::string text = beast::buffers_to_string(s.buffer.data());
  s.buffer.consume(s.buffer.size());
  return text;
}

bool WsClient::send(const std::string& message, bool binary) {
  auto& s = *impl_;
  bool done = false;
  beast::error_code error;
  s.ws.binary(binary);
  s.ws.async_write(net::buffer(message), [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
  return run_until(s.ioc, done, s.ws) && !error;
}

int WsClient::read_until_closed(std::size_t* messages, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (impl_->close_code == 0 && std::chrono::steady_clock::now() < end) {
    auto message = read(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()));
    if (message && messages) ++*messages;
    if (!message && impl_->close_code == 0) break;
  }
  return impl_->close_code;
}

int WsClient::close_code() const { return impl_->close_code; }

int WsClient::close(websocket::close_code code) {
  auto& s = *impl_;
  bool done = false;
  beast::error_code error;
  s.ws.async_close(code, [&](beast::error_code ec) { error = ec; done = true; });
  if (!run_until(s.ioc, done, s.ws) || error) return 0;
  return static_cast<int>(s.ws.reason().code);
}

struct WssClient::Impl {
  explicit Impl(const std::string& ca_file) : tls(net::ssl::context::tls_client), ws(ioc, tls) {
    tls.load_verify_file(ca_file);
    // On the stream: it was made from the context before the context was configured.
    ws.next_layer().set_verify_mode(net::ssl::verify_peer);
    ws.next_layer().set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  }
  net::io_context ioc;
  net::ssl::context tls;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
};

WssClient::WssClient(std::uint16_t port, const std::string& target, const std::string& ca_file)
    : impl_(std::make_unique<Impl>(ca_file)) {
  auto& ws = impl_->ws;
  bool done = false;
  beast::error_code error;
  ws.read_message_max(64 * 1024 * 1024);
  beast::get_lowest_layer(ws).async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                            [&](beast::error_code ec) { error = ec; done = true; });
  if (!run_until(impl_->ioc, done, ws) || error) throw std::runtime_error("connect failed");
  done = false;
  ws.next_layer().async_handshake(net::ssl::stream_base::client, [&](beast::error_code ec) {
    error = ec;
    done = true;
  });
  if (!run_until(impl_->ioc, done, ws) || error) {
    throw std::runtime_error("TLS handshake failed: " + error.message());
  }
  done = false;
  ws.async_handshake("127.0.0.1", target, [&](beast::error_code ec) { error = ec; done = true; });
  if (!run_until(impl_->ioc, done, ws) || error) {
    throw std::runtime_error("WebSocket handshake failed: " + error.message());
  }
}

WssClient::~WssClient() = default;

std::optional<std::string> WssClient::read(std::chrono::milliseconds limit) {
  auto& s = *impl_;
  bool done = false;
  beast::error_code error;
  s.ws.async_read(s.buffer, [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
  if (!run_until(s.ioc, done, s.ws, limit) || error) return std::nullopt;
  std::string text = beast::buffers_to_string(s.buffer.data());
  s.buffer.consume(s.buffer.size());
  return text;
}

bool WssClient::send(const std::string& message) {
  auto& s = *impl_;
  bool done = false;
  beast::error_code error;
  s.ws.async_write(net::buffer(message), [&](beast::error_code ec, std::size_t) { error = ec; done = true; });
  return run_until(s.ioc, done, s.ws) && !error;
}

}  // namespace cairn::testing
