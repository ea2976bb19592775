// HttpSession: one HTTP/1.1 keep-alive connection. Reads a request (bounded header and body),
// answers /healthz, static files and errors itself, and hands actor routes to the runtime
// without blocking; the actor's answer comes back on this session's lane (its I/O thread).
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

#include "cairn/http.hpp"
#include "io_lane.hpp"
#include "shared_state.hpp"

namespace cairn::gateway {

namespace beast = boost::beast;
namespace http = beast::http;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<SharedState> shared,
              IoLane& lane);
  void run();

 private:
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void handle(http::request<http::string_body> request);
  // Forwards `request` to actor (binding, name); `target`, if set, replaces its target.
  void to_actor(http::request<http::string_body> request, const std::string& binding,
                const std::string& name, std::optional<std::string> target = std::nullopt);
  void serve_static(const http::request<http::string_body>& request);
  void reply(const Response& response, bool keep_alive, bool head = false);
  void on_write(bool close, beast::error_code ec, std::size_t bytes);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<SharedState> shared_;
  IoLane& lane_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
};

}  // namespace cairn::gateway
