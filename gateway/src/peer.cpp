#include "peer.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <memory>

namespace cairn::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Steady = std::chrono::steady_clock;

template <class Start>
beast::error_code Peer::run(Steady::time_point deadline, Start&& start) {
  auto outcome = std::make_shared<std::optional<beast::error_code>>();
  start(outcome);
  io_.restart();
  while (!*outcome && Steady::now() < deadline) {
    io_.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()) +
                std::chrono::milliseconds(1));
    if (io_.stopped()) io_.restart();
  }
  if (!*outcome) {
    stream_.reset();  // cancels what is pending; its handler writes to `outcome`, alive
    io_.restart();
    io_.poll();
    return asio::error::timed_out;
  }
  return **outcome;
}

Result<http::response<http::string_body>> Peer::send(http::verb verb, const std::string& target,
                                                     std::string body, const std::string& token,
                                                     Steady::time_point deadline,
                                                     const std::string& content_type) {
  beast::error_code ec;
  if (!stream_) {
    stream_.emplace(io_);
    stream_->expires_at(deadline);
    auto address = asio::ip::make_address(host_, ec);
    if (ec) {
      tcp::resolver resolver(io_);
      auto found = resolver.resolve(host_, port_, ec);
      if (ec) return Error{Code::unavailable, "cannot resolve " + host_ + ": " + ec.message()};
      ec = run(deadline, [&](auto done) {
        stream_->async_connect(found, [done](beast::error_code e, const auto&) { *done = e; });
      });
    } else {
      tcp::endpoint to(address, static_cast<unsigned short>(std::stoul(port_)));
      ec = run(deadline, [&](auto done) {
        stream_->async_connect(to, [done](beast::error_code e) { *done = e; });
      });
    }
    if (ec) {
      stream_.reset();
      return Error{Code::unavailable,
                   "cannot connect to " + host_ + ":" + port_ + ": " + ec.message()};
    }
  }
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, host_ + ":" + port_);
  request.set("X-Cairn-Cluster-Token", token);
  request.set(http::field::content_type, content_type);
  request.keep_alive(true);
  request.body() = std::move(body);
  request.prepare_payload();
  stream_->expires_at(deadline);
  ec = run(deadline, [&](auto done) {
    http::async_write(*stream_, request, [done](beast::error_code e, std::size_t) { *done = e; });
  });
  auto response = std::make_shared<http::response<http::string_body>>();
  if (!ec) {
    ec = run(deadline, [&](auto done) {
      http::async_read(*stream_, buffer_, *response,
                       [done](beast::error_code e, std::size_t) { *done = e; });
    });
  }
  if (ec) {
    stream_.reset();
    return Error{Code::unavailable, "no answer from " + host_ + ":" + port_ + ": " + ec.message()};
  }
  if (!response->keep_alive()) stream_.reset();
  return std::move(*response);
}

}  // namespace cairn::gateway
