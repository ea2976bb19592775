#include "forward.hpp"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <cerrno>

#include "cairn/limits.hpp"

namespace cairn::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr std::size_t max_idle_per_node = 32;

// A kept-alive connection the other side has closed has its FIN waiting: never reused.
bool still_open(beast::tcp_stream& stream) {
  char byte = 0;
  ssize_t n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

struct ForwardPool::Exchange {
  std::string host;
  std::string port;
  std::string key;
  std::shared_ptr<Request> request;
  std::chrono::steady_clock::time_point deadline;
  Done done;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
};

std::unique_ptr<beast::tcp_stream> ForwardPool::take_idle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  while (!it->second.empty()) {
    auto stream = std::move(it->second.back());
    it->second.pop_back();
    if (still_open(*stream)) return stream;
  }
  return nullptr;
}

void ForwardPool::send(const std::string& host, const std::string& port, std::shared_ptr<Request> request,
                       std::chrono::steady_clock::time_point deadline, Done done) {
  auto exchange = std::make_shared<Exchange>();
  exchange->host = host;
  exchange->port = port;
  exchange->key = host + ":" + port;
  exchange->request = std::move(request);
  exchange->deadline = deadline;
  exchange->done = std::move(done);
  exchange->stream = take_idle(exchange->key);
  bool fresh = exchange->stream == nullptr;
  start(std::move(exchange), fresh);
}

void ForwardPool::start(std::shared_ptr<Exchange> exchange, bool fresh) {
  auto fail = [exchange](Code code, std::string message) { exchange->done(Error{code, std::move(message)}); };
  auto write = [this, exchange, fail](bool reused) {
    exchange->stream->expires_at(exchange->deadline);
    http::async_write(*exchange->stream, *exchange->request, [this, exchange, fail, reused](beast::error_code ec,
                                                                                           std::size_t) {
      if (ec == beast::error::timeout) {
        // The deadline: the request may have gone out whole (the timer can fire just as the
        // last byte leaves), so its effect is unknown.
        return fail(Code::timeout, "sending the request to node " + exchange->key +
                                       " took past the deadline; the request may still take effect");
      }
      if (ec) {
        // Not fully sent: the owner acts only on a whole request, so a fresh connection
        // may try again (a kept-alive one may have been closed meanwhile).
        if (reused) {
          exchange->stream.reset();
          return start(exchange, true);
        }
        return fail(Code::unavailable, "cannot send the request to node " + exchange->key + ": " + ec.message());
      }
      exchange->parser.body_limit(64 * 1024 * 1024);
      // An answer to HEAD has the GET's Content-Length and no body.
      if (exchange->request->method() == http::verb::head) exchange->parser.skip(true);  // an actor's answer, relayed whole
      http::async_read(*exchange->stream, exchange->buffer, exchange->parser,
                       [this, exchange, fail](beast::error_code e, std::size_t) {
                         if (e) {
                           return fail(Code::timeout, "the node that owns the actor (" + exchange->key +
                                                          ") did not answer: " + e.message() +
                                                          "; the request may still take effect");
                         }
                         auto response = exchange->parser.release();
                         if (response.keep_alive() && exchange->buffer.size() == 0) {
                           auto& idle = idle_[exchange->key];
                           if (idle.size() < max_idle_per_node) {
                             exchange->stream->expires_never();
                             idle.push_back(std::move(exchange->stream));
                           }
                         }
                         exchange->done(std::move(response));
                       });
    });
  };
  if (!fresh && exchange->stream) return write(true);
  beast::error_code ec;
  auto address = net::ip::make_address(exchange->host, ec);
  if (ec) return fail(Code::unavailable, "node address " + exchange->host + " is not an IP address");
  exchange->stream = std::make_unique<beast::tcp_stream>(ioc_);
  exchange->stream->expires_at(exchange->deadline);
  tcp::endpoint to(address, static_cast<unsigned short>(std::stoul(exchange->port)));
  exchange->stream->async_connect(to, [exchange, fail, write](beast::error_code e) {
    if (e) return fail(Code::unavailable, "cannot reach node " + exchange->key + ": " + e.message());
    exchange->stream->socket().set_option(tcp::no_delay(true), e);
    write(false);
  });
}

}  // namespace cairn::gateway
