// ForwardPool: an I/O lane's kept-alive HTTP connections to other nodes' internal listeners
// (cluster mode), used to send a request to the node that owns its actor. One per lane, used
// only on the lane's thread: no locks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/result.hpp"

namespace cairn::gateway {

class ForwardPool {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  // The owner's answer, or: Code::unavailable if it could not be reached (nothing was
  // sent: safe to try again), Code::timeout if it was sent and no answer came by the
  // deadline (its effect is unknown).
  using Done = std::function<void(Result<Response>)>;

  explicit ForwardPool(boost::asio::io_context& ioc) : ioc_(ioc) {}
  ForwardPool(const ForwardPool&) = delete;
  ForwardPool& operator=(const ForwardPool&) = delete;

  // Sends `request` to host:port; `done` runs on the lane's thread.
  void send(const std::string& host, const std::string& port, std::shared_ptr<Request> request,
            std::chrono::steady_clock::time_point deadline, Done done);

 private:
  struct Exchange;
  std::unique_ptr<boost::beast::tcp_stream> take_idle(const std::string& key);
  void start(std::shared_ptr<Exchange> exchange, bool fresh);

  boost::asio::io_context& ioc_;
  std::map<std::string, std::vector<std::unique_ptr<boost::beast::tcp_stream>>> idle_;  // by host:port
};

}  // namespace cairn::gateway
