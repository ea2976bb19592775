// Peer: one kept-alive HTTP connection to another node's internal listener, for one thread
// at a time, every call bounded by a deadline (its own io_context runs only inside a call).
// The hand-off and the admin API's cluster-wide operations use it; requests on the data
// path go through ForwardPool instead (asynchronous, on the I/O lanes).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "cairn/result.hpp"

namespace cairn::gateway {

class Peer {
 public:
  Peer(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}
  // Sends one request with the cluster token (connecting first if needed). Code::unavailable
  // if it could not connect or got no answer by `deadline` (the connection is then dropped).
  Result<boost::beast::http::response<boost::beast::http::string_body>> send(
      boost::beast::http::verb verb, const std::string& target, std::string body,
      const std::string& token, std::chrono::steady_clock::time_point deadline,
      const std::string& content_type = "application/octet-stream");

 private:
  template <class Start>
  boost::beast::error_code run(std::chrono::steady_clock::time_point deadline, Start&& start);

  std::string host_, port_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace cairn::gateway
