#include "client.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <stdexcept>

namespace cairn::load {

namespace http = beast::http;
namespace websocket = beast::websocket;
using net::redirect_error;
using net::use_awaitable;

Target parse_url(const std::string& list, const std::string& cacert) {
  if (auto comma = list.find(','); comma != std::string::npos) {
    Target first = parse_url(list.substr(0, comma), cacert);
    Target rest = parse_url(list.substr(comma + 1), cacert);
    auto more = std::move(rest.others);
    rest.others.clear();
    first.others.push_back(std::move(rest));
    for (auto& m : more) first.others.push_back(std::move(m));
    return first;
  }
  const std::string& url = list;
  bool tls = url.rfind("https://", 0) == 0;
  if (!tls && url.rfind("http://", 0) != 0) {
    throw std::invalid_argument("--url must start with http:// or https:// (got " + url + ")");
  }
  std::string rest = url.substr(tls ? 8 : 7);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) throw std::invalid_argument("--url takes no path (got " + url + ")");
  auto colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  std::string port = colon == std::string::npos ? (tls ? "443" : "80") : rest.substr(colon + 1);
  if (host.empty() || port.empty()) throw std::invalid_argument("--url needs a host and port (got " + url + ")");
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) throw std::invalid_argument("cannot resolve " + host + ":" + port + ": " + ec.message());
  Target out{host + ":" + port, results.begin()->endpoint(), {}, {}, {}, {}};
  if (tls) {
    out.tls = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
    out.tls->set_verify_mode(net::ssl::verify_peer);
    try {
      if (cacert.empty()) out.tls->set_default_verify_paths();
      else out.tls->load_verify_file(cacert);
    } catch (const boost::system::system_error& e) {
      throw std::invalid_argument("cannot read --cacert " + cacert + ": " + e.code().message());
    }
    out.tls_name = host;
  }
  return out;
}

net::awaitable<std::string> connect_stream(cairn::net::MaybeTlsStream& stream, const Target& target) {
  beast::error_code ec;
  co_await stream.tcp().async_connect(target.endpoint, redirect_error(use_awaitable, ec));
  if (ec) co_return ec == beast::error::timeout ? "timeout" : "connect: " + ec.message();
  stream.socket().set_option(tcp::no_delay(true));
  if (!stream.tls()) co_return std::string();
  auto& tls = stream.tls_layer();
  boost::system::error_code not_ip;
  net::ip::make_address(target.tls_name, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(tls.native_handle(), target.tls_name.c_str());  // SNI
  tls.set_verify_callback(net::ssl::host_name_verification(target.tls_name));
  co_await tls.async_handshake(net::ssl::stream_base::client, redirect_error(use_awaitable, ec));
  if (ec) co_return ec == beast::error::timeout ? "timeout" : "tls: " + ec.message();
  co_return std::string();
}

HttpConnection::HttpConnection(net::any_io_executor executor, const Target& target,
                               std::chrono::milliseconds timeout)
    : target_(target), timeout_(timeout), stream_(executor, target.tls) {}

void HttpConnection::close() {
  beast::error_code ignored;
  stream_.socket().close(ignored);
  // A TLS session does not outlive its connection: the next one starts a fresh stream.
  if (stream_.tls()) stream_.renew();
  connected_ = false;
  buffer_.clear();
}

net::awaitable<HttpResult> HttpConnection::request(http::verb method, std::string target, std::string body) {
  bool reused = connected_;
  HttpResult result = co_await attempt(method, target, body);
  if (result.status == 0 && reused && result.error.rfind("stale", 0) == 0) {
    result = co_await attempt(method, target, body);
  }
  if (result.error.rfind("stale: ", 0) == 0) result.error = result.error.substr(7);
  co_return result;
}

net::awaitable<HttpResult> HttpConnection::attempt(http::verb method, const std::string& target,
                                                   const std::string& body) {
  HttpResult result;
  beast::error_code ec;
  if (!connected_) {
    stream_.expires_after(timeout_);
    auto failed = co_await connect_stream(stream_, target_);
    if (!failed.empty()) {
      result.error = failed;
      close();
      co_return result;
    }
    connected_ = true;
  }
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, target_.host);
  for (const auto& [name, value] : target_.headers) req.set(name, value);
  if (method != http::verb::get) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  stream_.expires_after(timeout_);
  co_await http::async_write(stream_, req, redirect_error(use_awaitable, ec));
  if (ec) {
    result.error = ec == beast::error::timeout ? "timeout" : "stale: write: " + ec.message();
    close();
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  co_await http::async_read(stream_, buffer_, parser, redirect_error(use_awaitable, ec));
  if (ec) {
    // Nothing read on a kept-alive connection the server closed meanwhile: "stale" (retried).
    bool nothing = ec == http::error::end_of_stream || ec == net::error::connection_reset;
    result.error = ec == beast::error::timeout ? "timeout" : (nothing ? "stale: read: " : "read: ") + ec.message();
    close();
    co_return result;
  }
  auto res = parser.release();
  result.status = static_cast<int>(res.result_int());
  result.body = std::move(res.body());
  if (!res.keep_alive()) close();
  co_return result;
}

WsConnection::WsConnection(net::any_io_executor executor, const Target& target)
    : target_(target), ws_(executor, target.tls) {}

net::awaitable<std::string> WsConnection::connect(std::string path, std::chrono::milliseconds timeout) {
  beast::error_code ec;
  auto& stream = beast::get_lowest_layer(ws_);
  stream.expires_after(timeout);
  auto failed = co_await connect_stream(stream, target_);
  if (!failed.empty()) co_return failed;
  co_await ws_.async_handshake(target_.host, path, redirect_error(use_awaitable, ec));
  if (ec) co_return ec == beast::error::timeout ? "timeout" : "handshake: " + ec.message();
  stream.expires_never();
  websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(beast::role_type::client);
  t.idle_timeout = websocket::stream_base::none();  // sockets here sit idle on purpose
  ws_.set_option(t);
  ws_.read_message_max(16 * 1024 * 1024);
  co_return std::string();
}

net::awaitable<std::optional<std::string>> WsConnection::read(std::string& error) {
  beast::error_code ec;
  buffer_.clear();
  co_await ws_.async_read(buffer_, redirect_error(use_awaitable, ec));
  if (ec) {
    error = ec == websocket::error::closed
                ? "closed by server (" + std::to_string(ws_.reason().code) + ")"
                : "ws read: " + ec.message();
    co_return std::nullopt;
  }
  co_return beast::buffers_to_string(buffer_.data());
}

net::awaitable<std::string> WsConnection::send(std::string text) {
  beast::error_code ec;
  ws_.text(true);
  co_await ws_.async_write(net::buffer(text), redirect_error(use_awaitable, ec));
  co_return ec ? "ws write: " + ec.message() : std::string();
}

void WsConnection::abort() {
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

net::awaitable<void> WsConnection::close() {
  if (!ws_.is_open()) co_return;
  beast::error_code ec;
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(2));
  co_await ws_.async_close(websocket::close_code::normal, redirect_error(use_awaitable, ec));
  // A read may still be waiting on this socket; the close completes it.
}

}  // namespace cairn::load
