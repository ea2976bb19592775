// HttpSession: one HTTP/1.1 keep-alive connection. Reads a request (bounded header and body,
// each within its own deadline; an idle connection is closed after the keep-alive timeout),
// answers /healthz, static files and errors itself, and hands actor routes to the runtime
// without blocking; the actor's answer comes back on this session's lane (its I/O thread),
// or 504 after the request timeout. Pipelined requests are answered one by one, in order.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <memory>
#include <optional>

#include "cairn/http.hpp"
#include "cairn/net/maybe_tls_stream.hpp"
#include "io_lane.hpp"
#include "shared_state.hpp"

namespace cairn::gateway {

namespace beast = boost::beast;
namespace http = beast::http;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `slot` is this connection's share of GatewayOptions::max_connections.
  HttpSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<SharedState> shared,
              IoLane& lane, std::shared_ptr<void> slot);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;
  void run();

 private:
  // Sets waiting_for_ (0: none), keeping SharedState::requests_waiting in step.
  void wait_for(std::uint64_t request_id);
  void on_handshake(beast::error_code ec);
  // The first bytes on a TLS listener were not a TLS handshake: a plain 400 saying so.
  void plain_on_tls_port();
  void do_read();
  void on_first_bytes(beast::error_code ec, std::size_t bytes);
  void read_header();
  void on_header(beast::error_code ec, std::size_t bytes);
  void on_read(beast::error_code ec, std::size_t bytes);
  // The answer to a read that failed (nothing if the client is gone); closes after it.
  void read_failed(beast::error_code ec);
  void handle(http::request<http::string_body> request);
  // Who is calling, its request id and trace, for this listener (the public one reads the
  // wire, trusting proxies' headers only from --trusted-proxy; the internal one reads what the
  // forwarding node sent). Strips the headers no client may set.
  void begin_request(http::request<http::string_body>& request);
  // The public listener's checks once the route is known (binding "" for static files):
  // WebSocket origin, bearer token, rate limits, the application's hook. An answer means the
  // request goes no further.
  std::optional<Response> edge_checks(http::request<http::string_body>& request, std::string_view path,
                                      const std::string& binding);
  // The access log's line for the request answered `status` with `bytes` of body.
  void log_access(int status, std::size_t bytes, double elapsed);
  // Forwards `request` to actor (binding, name); `target`, if set, replaces its target.
  void to_actor(http::request<http::string_body> request, const std::string& binding,
                const std::string& name, std::optional<std::string> target = std::nullopt);
  // Cluster mode, the internal listener: a call from another node's actor (ClusterCalls).
  void remote_call(http::request<http::string_body> request);
  // The internal listener: a hand-off's file or commit, run on a worker (disk I/O).
  void handoff(http::request<http::string_body> request);
  void replicate(http::request<http::string_body> request);
  // The internal listener: another node's admin listener asks (/_cairn/admin/...).
  void internal_admin(http::request<http::string_body> request);
  // Runs `work` on the worker pool and replies with what it returns (500 if it throws).
  void answer_off_lane(bool keep_alive, const char* what, std::function<Response()> work);
  void answer_off_lane(bool keep_alive, const char* what, std::function<Response()> work,
                       boost::asio::thread_pool& pool);
  // The 421 that tells another node its map is stale (retried there, never relayed).
  static Response misdirected(unsigned shard);
  // Cluster mode: sends `request` to the node that owns `shard` and relays its answer;
  // waits (until the request timeout) while the shard has no owner or moves.
  void forward(http::request<http::string_body> request, unsigned shard);
  void forward_attempt(std::shared_ptr<http::request<http::string_body>> outgoing, unsigned shard,
                       std::uint64_t request_id, std::chrono::steady_clock::time_point until, bool keep_alive,
                       bool head);
  // Runs `again` shortly, or answers `last` if the deadline comes first.
  void forward_later(std::function<void()> again, std::uint64_t request_id,
                     std::chrono::steady_clock::time_point until, bool keep_alive, bool head, Response last);
  // A WebSocket upgrade for an actor on another node: made to the owner first, then relayed
  // (WebSocketProxy); retried like a request while the shard has no owner or moves.
  void upgrade_attempt(std::shared_ptr<http::request<http::string_body>> request, unsigned shard,
                       std::uint64_t request_id, std::chrono::steady_clock::time_point until);
  // The owner's answer as this node's, without the fields that are this node's own.
  static Response relayed(const http::response<http::string_body>& got);
  void serve_static(const http::request<http::string_body>& request);
  // The admin listener's requests (GatewayOptions::admin_token set).
  void handle_admin(http::request<http::string_body> request);
  Response healthz() const;
  // Answers `request_id` unless it was answered already (504 after the request timeout).
  void answer_actor(std::uint64_t request_id, Response response, bool keep_alive, bool head);
  void reply(const Response& response, bool keep_alive, bool head = false);
  void on_write(bool close, beast::error_code ec, std::size_t bytes);

  cairn::net::MaybeTlsStream stream_;  // plain TCP, or TLS when the listener has a certificate
  beast::flat_buffer buffer_;
  std::shared_ptr<SharedState> shared_;
  IoLane& lane_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
  std::shared_ptr<void> slot_;
  // The request waiting for an actor: its id (later answers to older ids are dropped) and
  // the timer that answers it 504.
  std::uint64_t waiting_for_ = 0;
  std::uint64_t next_request_ = 0;
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer retry_;  // cluster mode: the next try of a forward
  // The request being answered: its route's statistics slot and when its header came; the
  // method and path are kept only when requests are logged (debug).
  std::size_t stats_slot_ = SharedState::other;
  std::chrono::steady_clock::time_point started_;
  std::string log_method_;
  std::string log_path_;
  // The connection's peer, and the request being answered as the edge saw it.
  boost::asio::ip::address peer_;
  bool edge_done_ = false;     // begin_request ran for it (a forward that came back here)
  bool edge_checked_ = false;  // and edge_checks let it through (never run twice: tokens, hooks)
  std::string client_address_;
  std::string request_id_;
  std::string traceparent_;
  std::string cors_origin_;  // an allowed Origin: the response gets the CORS headers
  nlohmann::json claims_;
};

}  // namespace cairn::gateway
