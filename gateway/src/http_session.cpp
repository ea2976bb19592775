// HttpSession: read, route, answer.
#include "http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <spdlog/spdlog.h>

#include "cairn/limits.hpp"
#include "cairn/log_context.hpp"
#include "admin_assets.hpp"
#include "admin_api.hpp"
#include "cluster_admin.hpp"
#include "handoff.hpp"
#include "remote_calls.hpp"
#include "routes.hpp"
#include "static_files.hpp"
#include "websocket_proxy.hpp"
#include "websocket_session.hpp"

namespace cairn::gateway {

namespace net = boost::asio;

namespace {

// Compares a presented secret with the expected one in time independent of where they differ.
bool same_secret(std::string_view presented, std::string_view expected) {
  if (expected.empty() || presented.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ expected[i]);
  }
  return diff == 0;
}

// What only a node of the cluster may say of a request (any spelling).
bool is_node_header(std::string_view name) {
  return beast::iequals(name, "X-Cairn-Client") || beast::iequals(name, "X-Cairn-Claims") ||
         beast::iequals(name, "X-Cairn-Internal-Error");
}

// A log line's view of text a client or an actor wrote: no line breaks, no quotes to forge
// the access log's fields with.
std::string loggable(std::string_view text, std::size_t max = 4096) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  for (char c : text.substr(0, max)) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '"') out += "%22";
    else out += c;
  }
  if (text.size() > max) out += "...";
  return out;
}

Request to_request(const http::request<http::string_body>& in) {
  Request out;
  out.method = std::string(in.method_string());
  out.target = std::string(in.target());
  out.headers.reserve(8);
  for (const auto& field : in) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = in.body();
  return out;
}

}  // namespace

HttpSession::HttpSession(net::ip::tcp::socket&& socket, std::shared_ptr<SharedState> shared,
                         IoLane& lane, std::shared_ptr<void> slot)
    : stream_(shared->tls_context() ? cairn::net::MaybeTlsStream(std::move(socket), shared->tls_context())
                                    : cairn::net::MaybeTlsStream(std::move(socket))),
      shared_(std::move(shared)), lane_(lane), slot_(std::move(slot)),
      deadline_(stream_.get_executor()),
      retry_(stream_.get_executor()) {
  beast::error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  if (!ec) peer_ = endpoint.address();
}

HttpSession::~HttpSession() {
  if (waiting_for_ != 0) shared_->requests_waiting.fetch_sub(1);
}

void HttpSession::wait_for(std::uint64_t request_id) {
  if (waiting_for_ == 0 && request_id != 0) shared_->requests_waiting.fetch_add(1);
  if (waiting_for_ != 0 && request_id == 0) shared_->requests_waiting.fetch_sub(1);
  waiting_for_ = request_id;
}

void HttpSession::run() {
  if (!stream_.tls()) {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
    return;
  }
  // TLS: the handshake first, within the header timeout (a client that never completes it
  // holds a connection slot no longer than one that never sends its header). Its first
  // bytes are read here: a TLS handshake record starts with 0x16; anything else is most
  // likely plain HTTP sent to this HTTPS port, and gets a plain 400 that says so.
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->stream_.expires_after(self->shared_->options.header_timeout);
    self->stream_.tcp().async_read_some(
        self->buffer_.prepare(2048), [self](beast::error_code ec, std::size_t bytes) {
          if (ec) return;  // gone, or too slow: the connection closes with the session
          self->buffer_.commit(bytes);
          const auto* first = static_cast<const unsigned char*>(self->buffer_.data().data());
          if (bytes == 0 || *first != 0x16) return self->plain_on_tls_port();
          self->stream_.tls_layer().async_handshake(
              net::ssl::stream_base::server, self->buffer_.data(),
              [self](beast::error_code handshake_ec, std::size_t used) {
                self->buffer_.consume(used);
                // Bytes after the handshake would be encrypted data read past it: not expected
                // from a client that waits for the server's Finished, so refused.
                if (!handshake_ec && self->buffer_.size() > 0) handshake_ec = net::ssl::error::stream_truncated;
                self->on_handshake(handshake_ec);
              });
        });
  });
}

void HttpSession::plain_on_tls_port() {
  static const std::string answer = [] {
    std::string body =
        Error{Code::invalid_argument, "this port speaks HTTPS: use https:// (TLS), not plain HTTP"}.to_json().dump();
    return "HTTP/1.1 400 Bad Request\r\nServer: cairn\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  stream_.expires_after(shared_->options.body_timeout);
  net::async_write(stream_.tcp(), net::buffer(answer), [self = shared_from_this()](beast::error_code, std::size_t) {
    beast::error_code ignored;
    self->stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  });
}

void HttpSession::on_handshake(beast::error_code ec) {
  if (ec) {
    spdlog::debug("TLS handshake failed: {}", ec.message());
    return;  // the connection closes with the session
  }
  do_read();
}

void HttpSession::do_read() {
  parser_.emplace();
  // A forwarded request carries, besides the client's headers (held to the limit by the node
  // that took it), what that node adds: the claims of its token, the client, id and trace.
  parser_->header_limit(static_cast<std::uint32_t>(shared_->internal ? 3 * limits::max_http_header_bytes
                                                                     : limits::max_http_header_bytes));
  // Beast checks a Content-Length against the limit as the header completes, before on_header
  // could raise it: the internal listener starts at the largest body it takes from another
  // node (a hand-off's file) and on_header holds every other request to the usual limit.
  const auto& cluster = shared_->options.cluster;
  parser_->body_limit(cluster && cluster->internal ? max_handoff_file_bytes
                      : shared_->admin_mode         ? limits::max_admin_body_bytes
                                                    : limits::max_http_body_bytes);
  stats_slot_ = SharedState::other;
  edge_done_ = false;
  edge_checked_ = false;
  client_address_.clear();
  claims_ = nullptr;
  request_id_.clear();
  traceparent_.clear();
  cors_origin_.clear();
  log_method_.clear();
  log_path_.clear();
  if (buffer_.size() > 0) return read_header();  // a pipelined request is already here
  // Between requests the connection may idle for the keep-alive timeout; once the first
  // byte of a request has come, the header must follow within the header timeout.
  stream_.expires_after(shared_->options.keep_alive_timeout);
  stream_.async_read_some(buffer_.prepare(4096), beast::bind_front_handler(
                                                     &HttpSession::on_first_bytes, shared_from_this()));
}

void HttpSession::on_first_bytes(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    // Idle past the keep-alive timeout (the stream is closed already), or the client left.
    if (ec != beast::error::timeout) stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return;
  }
  buffer_.commit(bytes);
  read_header();
}

void HttpSession::read_header() {
  stream_.expires_after(shared_->options.header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
}

void HttpSession::on_header(beast::error_code ec, std::size_t) {
  started_ = std::chrono::steady_clock::now();
  if (ec) return read_failed(ec);
  if (parser_->is_done()) return handle(parser_->release());
  if (const auto& cluster = shared_->options.cluster; cluster && cluster->internal) {
    // A hand-off sends a whole actor database in one body, a replication batch a sync's worth
    // of pages: allowed to another node only. Anything else keeps the usual limit.
    const auto& header = parser_->get();
    auto token = header.find("X-Cairn-Cluster-Token");
    std::uint64_t allowed = limits::max_http_body_bytes;
    if (token != header.end() && same_secret(token->value(), cluster->token)) {
      if (header.target().starts_with(handoff_path_prefix)) allowed = max_handoff_file_bytes;
      if (header.target() == replicate_path) allowed = max_replication_batch_bytes;
    }
    if (auto length = parser_->content_length(); length && *length > allowed) {
      return read_failed(http::error::body_limit);
    }
    parser_->body_limit(allowed);  // a chunked body: checked as its chunks come
  }
  stream_.expires_after(shared_->options.body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (ec) return read_failed(ec);
  handle(parser_->release());
}

void HttpSession::read_failed(beast::error_code ec) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec == http::error::body_limit) {
    return reply(Response::error(Code::too_large,
                                 "a request body may be at most " +
                                     std::to_string(limits::max_http_body_bytes) +
                                     " bytes (limits::max_http_body_bytes)"),
                 false);
  }
  if (ec == http::error::header_limit) {
    return reply(Response::error(Code::headers_too_large,
                                 "the request line and headers may be at most " +
                                     std::to_string(limits::max_http_header_bytes) +
                                     " bytes (limits::max_http_header_bytes)"),
                 false);
  }
  if (ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::eof ||
      ec == net::error::operation_aborted || ec == net::ssl::error::stream_truncated) {
    return;  // the client went away, or was too slow (the stream is closed): nobody to answer
  }
  reply(Response::error(Code::invalid_argument, "malformed HTTP request: " + ec.message()), false);
}

Response HttpSession::healthz() const {
  auto stats = shared_->runtime.stats();
  return Response::json(200, {{"status", "ok"},
                              {"live_instances", stats.live_instances},
                              {"websockets", stats.websockets},
                              {"actors_with_alarms", stats.actors_with_alarms},
                              {"alarms_run", stats.alarms_run},
                              {"commits", stats.commits},
                              {"committed_events", stats.committed_events},
                              {"overloaded", stats.overloaded},
                              {"connections", shared_->connections.load()},
                              {"connections_refused", shared_->connections_refused.load()}});
}

void HttpSession::begin_request(http::request<http::string_body>& request) {
  edge_done_ = true;
  claims_ = nullptr;
  cors_origin_.clear();
  // Never from a client: only a forwarding node sets these (with the cluster's token), and
  // only the runtime marks an internal error.
  auto cluster_token = request.find("X-Cairn-Cluster-Token");
  bool from_node = shared_->internal && cluster_token != request.end() &&
                   same_secret(cluster_token->value(), shared_->options.cluster->token);
  auto header = [&request](std::string_view name) -> std::string_view {
    auto found = request.find(beast::string_view(name.data(), name.size()));
    return found == request.end() ? std::string_view() : std::string_view(found->value());
  };
  if (from_node) {
    client_address_ = std::string(header("X-Cairn-Client"));
    request_id_ = usable_request_id(header("X-Request-Id")).value_or(new_request_id());
    traceparent_ = std::string(header("traceparent"));
    if (auto claims = header("X-Cairn-Claims"); !claims.empty()) {
      claims_ = nlohmann::json::parse(claims, nullptr, false);
      if (claims_.is_discarded()) claims_ = nullptr;
    }
  } else {
    bool trusted = shared_->edge && !shared_->edge->trusted().empty() && shared_->edge->trusted().contains(peer_);
    client_address_ = shared_->edge ? client_address(peer_, request, shared_->edge->trusted(),
                                                     shared_->edge->options().forwarded_header)
                                    : address_text(peer_);
    std::optional<std::string> given;
    if (trusted) given = usable_request_id(header("X-Request-Id"));
    request_id_ = given ? std::move(*given) : new_request_id();
    traceparent_ = next_traceparent(header("traceparent"));
    if (shared_->edge && shared_->edge->cors()) {
      auto origin = header("Origin");
      if (!origin.empty() && shared_->edge->origin_allowed(origin)) cors_origin_ = std::string(origin);
    }
  }
  for (const char* name : {"X-Cairn-Client", "X-Cairn-Claims", "X-Cairn-Internal-Error"}) request.erase(name);
  if (!shared_->admin_mode) {
    // What the actor (or the node it runs on) sees: this request's id and trace.
    request.set("X-Request-Id", request_id_);
    if (!traceparent_.empty()) request.set("traceparent", traceparent_);
  }
  // The path only: a query or a body may carry what must not reach a log.
  std::string_view target = request.target();
  log_method_ = loggable(request.method_string(), 32);
  log_path_ = loggable(target.substr(0, target.find('?')), 1024);
}

std::optional<Response> HttpSession::edge_checks(http::request<http::string_body>& request, std::string_view raw_path,
                                                 const std::string& binding) {
  if (edge_checked_) return std::nullopt;  // a forward that came back here: checked once
  auto& edge = *shared_->edge;
  std::string_view method = request.method_string();
  // Rules name paths as the actor sees them: percent-decoded (so "/objects/DOC/%61lice/"
  // cannot slip past a rule for "/objects/DOC/alice/*").
  auto decoded = url_decode(raw_path, false);
  std::string_view path = decoded ? std::string_view(*decoded) : raw_path;
  if (edge.cors() && beast::websocket::is_upgrade(request)) {
    // Browsers send the page's Origin with every upgrade and enforce no CORS on WebSockets:
    // the gateway does. Same-origin pages (this listener's own) are always allowed.
    auto origin = request.find(http::field::origin);
    auto host = request.find(http::field::host);
    if (origin != request.end() && !edge.origin_allowed(origin->value()) &&
        !same_origin(origin->value(), host == request.end() ? std::string_view() : std::string_view(host->value()))) {
      shared_->origins_refused.fetch_add(1, std::memory_order_relaxed);
      return Response::error(Code::forbidden, "WebSocket upgrades from origin " + std::string(origin->value()) +
                                                          " are not allowed (--cors-origin)");
    }
  }
  if (edge.options().jwt.enabled() && edge.token_required(method, path, binding)) {
    auto authorization = request.find(http::field::authorization);
    auto claims = edge.verify_bearer(authorization == request.end() ? std::nullopt
                                                                     : std::optional<std::string_view>(authorization->value()));
    if (!claims) {
      shared_->unauthenticated.fetch_add(1, std::memory_order_relaxed);
      auto refused = Response::error(claims.error());
      refused.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cairn\", error=\"invalid_token\"");
      return refused;
    }
    claims_ = std::move(*claims);
  }
  if (!edge.options().rate_limits.empty()) {
    // A verified identity is the client; else its address.
    std::string client = claims_.is_object() && claims_.contains("sub") && claims_["sub"].is_string()
                             ? "sub:" + claims_["sub"].get<std::string>()
                             : rate_limit_key(client_address_);
    if (auto wait = edge.over_limit(method, path, binding, client)) {
      shared_->rate_limited.fetch_add(1, std::memory_order_relaxed);
      auto refused = Response::error(Code::resource_exhausted, "too many requests from this client: try again in " +
                                                                   std::to_string(static_cast<long>(std::ceil(*wait))) +
                                                                   " s (rate limit)");
      // Response::error says "1"; the bucket knows better.
      for (auto& [name, value] : refused.headers) {
        if (name == "Retry-After") value = std::to_string(std::max(1L, static_cast<long>(std::ceil(*wait))));
      }
      return refused;
    }
  }
  if (const auto& hook = edge.options().on_request) {
    Request seen = to_request(request);
    seen.client_address = client_address_;
    seen.request_id = request_id_;
    seen.traceparent = traceparent_;
    seen.claims = claims_;
    std::optional<Response> answer;
    try {
      answer = hook(seen, binding);
    } catch (const std::exception& e) {
      spdlog::error("the on_request hook threw: {}", e.what());
      answer = Response::error(Code::internal, "internal error in the request hook");
    } catch (...) {
      spdlog::error("the on_request hook threw something that is not a std::exception");
      answer = Response::error(Code::internal, "internal error in the request hook");
    }
    if (answer) {
      shared_->hook_answered.fetch_add(1, std::memory_order_relaxed);
      return answer;
    }
    // The headers it set (or took away) go on with the request; what no client may set stays
    // out. Most hooks change nothing: the request is then left as it is.
    auto unchanged = [&] {
      std::size_t i = 0;
      for (const auto& field : request) {
        if (i == seen.headers.size() || seen.headers[i].first != field.name_string() ||
            seen.headers[i].second != field.value()) {
          return false;
        }
        ++i;
      }
      return i == seen.headers.size();
    };
    if (!unchanged()) {
      request.clear();
      for (const auto& [name, value] : seen.headers) {
        if (is_node_header(name)) continue;
        request.insert(beast::string_view(name.data(), name.size()), beast::string_view(value.data(), value.size()));
      }
    }
  }
  edge_checked_ = true;
  return std::nullopt;
}

void HttpSession::handle(http::request<http::string_body> request) {
  if (!edge_done_) begin_request(request);
  ScopedLogContext about({request_id_, std::string(trace_id_of(traceparent_))});
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (shared_->edge && shared_->edge->cors() && request.method() == http::verb::options &&
      request.find(http::field::origin) != request.end() &&
      request.find(http::field::access_control_request_method) != request.end()) {
    // A CORS preflight: answered here, before any actor (it carries no credentials).
    stats_slot_ = SharedState::other;
    std::string origin(request[http::field::origin]);
    cors_origin_.clear();  // the preflight's answer carries its own
    if (!shared_->edge->origin_allowed(origin)) {
      shared_->origins_refused.fetch_add(1, std::memory_order_relaxed);
      return reply(Response::error(Code::forbidden,
                                   "origin " + origin + " may not call this server from a browser (--cors-origin)"),
                   request.keep_alive());
    }
    return reply(shared_->edge->preflight(origin, request[http::field::access_control_request_headers]),
                 request.keep_alive());
  }
  // Every listener answers /livez (the process serves) and /readyz (it should get traffic:
  // not draining after a stop signal, and in cluster mode not fenced and owning shards),
  // without a token, for load balancers and systemd.
  if (path == "/livez" || path == "/readyz") {
    stats_slot_ = SharedState::healthz;
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return reply(Response::method_not_allowed("GET, HEAD", "use GET " + std::string(path)), request.keep_alive());
    }
    Response answer = Response::json(200, {{"status", path == "/livez" ? "live" : "ready"}});
    if (path == "/readyz") {
      std::string reason = shared_->draining.load() ? "draining: the server is stopping"
                           : shared_->options.not_ready ? shared_->options.not_ready()
                                                        : std::string();
      if (!reason.empty()) {
        answer = Response::json(503, {{"status", "not ready"}, {"reason", reason}});
        answer.headers.emplace_back("Retry-After", "1");
      }
    }
    return reply(answer, request.keep_alive(), request.method() == http::verb::head);
  }
  // Both listeners answer /healthz, without a token.
  if (path == "/healthz") {
    stats_slot_ = SharedState::healthz;
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return reply(Response::method_not_allowed("GET, HEAD", "use GET /healthz"), request.keep_alive());
    }
    return reply(healthz(), request.keep_alive(), request.method() == http::verb::head);
  }
  if (shared_->admin_mode) return handle_admin(std::move(request));
  if (const auto& cluster = shared_->options.cluster; cluster && cluster->internal) {
    // The internal listener: other nodes only, each request with the cluster's token.
    auto token = request.find("X-Cairn-Cluster-Token");
    if (token == request.end() || !same_secret(token->value(), cluster->token)) {
      return reply(Response::error(Code::unauthenticated,
                                   "this is a cairn node's internal listener: requests need the cluster token"),
                   false);
    }
    // Never seen by actors (one that logs its headers would leak the secret).
    request.erase("X-Cairn-Cluster-Token");
    request.erase("X-Cairn-Hop");
    if (path == remote_call_path) return remote_call(std::move(request));
    if (path.starts_with(handoff_path_prefix)) return handoff(std::move(request));
    if (path == replicate_path) return replicate(std::move(request));
    if (path.starts_with(internal_admin_prefix)) return internal_admin(std::move(request));
  }
  if (auto object = match_object_route(shared_->options.object_bindings, target)) {
    if (!*object) return reply(Response::error(object->error()), request.keep_alive());
    auto& matched = **object;
    stats_slot_ = shared_->object_slot(matched.binding);
    if (shared_->edge) {
      if (auto answer = edge_checks(request, path, matched.binding)) return reply(*answer, request.keep_alive());
    }
    return to_actor(std::move(request), matched.binding, matched.name, std::move(matched.target));
  }
  Request probe;
  probe.target = std::string(target);
  if (auto matched = match_route(shared_->options.routes, probe)) {
    if (!*matched) return reply(Response::error(matched->error()), request.keep_alive());
    const Route& route = *(*matched)->route;
    stats_slot_ = shared_->route_slot(static_cast<std::size_t>(&route - shared_->options.routes.data()));
    if (shared_->edge) {
      if (auto answer = edge_checks(request, path, route.binding)) return reply(*answer, request.keep_alive());
    }
    return to_actor(std::move(request), route.binding, (*matched)->name);
  }
  stats_slot_ = SharedState::static_files;
  if (shared_->edge) {
    if (auto answer = edge_checks(request, path, {})) return reply(*answer, request.keep_alive());
  }
  serve_static(request);
}

void HttpSession::handle_admin(http::request<http::string_body> request) {
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  bool keep_alive = request.keep_alive();
  bool read = request.method() == http::verb::get || request.method() == http::verb::head;
  bool head = request.method() == http::verb::head;
  // The inspector page's own files carry no data: the browser loads them without the token
  // (it cannot send one on navigation); everything they fetch needs it.
  if (const auto* asset = find_admin_asset(path)) {
    stats_slot_ = SharedState::inspector;
    if (!read) return reply(Response::method_not_allowed("GET, HEAD", "the inspector's files answer GET"), keep_alive);
    return reply(Response{200, {{"Content-Type", std::string(asset->content_type)}, {"Cache-Control", "no-cache"}},
                          std::string(asset->body)},
                 keep_alive, head);
  }
  bool metrics = path == "/metrics";
  stats_slot_ = metrics ? SharedState::metrics_route : SharedState::admin_route;
  auto authorization = request.find(http::field::authorization);
  if (authorization == request.end() || !bearer_matches(authorization->value(), shared_->options.admin_token)) {
    auto refused = Response::error(Code::unauthenticated,
                                   "the admin API needs \"Authorization: Bearer <token>\" with the token "
                                   "of --admin-token-file");
    refused.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cairn-admin\"");
    return reply(refused, keep_alive);
  }
  if (metrics && !read) return reply(Response::method_not_allowed("GET, HEAD", "use GET /metrics"), keep_alive);
  // Admin operations block (they wait for actors, copy files): off the I/O thread.
  auto work = [self = shared_from_this(), metrics, actor_request = to_request(request)]() {
    Response response;
    if (actor_request.path() == "/admin/cluster") {
      const auto& status = self->shared_->options.cluster_status;
      if (actor_request.method != "GET" && actor_request.method != "HEAD") {
        response = Response::method_not_allowed("GET, HEAD", "use GET /admin/cluster");
      } else if (!status) {
        response = Response::error(Code::not_found, "this node does not run in a cluster (no --cluster)");
      } else {
        auto shards = actor_request.query_param("shards");
        if (!shards) {
          response = Response::error(shards.error());
        } else {
          response = Response::json(200, status(shards->has_value() && **shards != "0"));
        }
      }
    } else if (actor_request.path() == "/admin/reload") {
      // New versions of the plugins' libraries (cairn/plugin.hpp; `cairnctl reload`).
      const auto& reload = self->shared_->options.reload;
      if (actor_request.method != "POST") {
        response = Response::method_not_allowed("POST", "use POST /admin/reload");
      } else if (!reload) {
        response = Response::error(Code::not_found, "this server loads no plugin (--plugin)");
      } else {
        nlohmann::json libraries;
        try {
          libraries = reload();
        } catch (const std::exception& e) {
          libraries = nlohmann::json::array({{{"outcome", "refused"}, {"reason", std::string("the reload failed: ") + e.what()}}});
        }
        std::string refused;
        for (const auto& row : libraries) {
          if (row.value("outcome", "") == "refused") refused += (refused.empty() ? "" : "; ") + row.value("reason", "");
        }
        // 422: a library's new version was refused (its row says why); its old version runs on.
        response = refused.empty() ? Response::json(200, {{"libraries", libraries}})
                                   : Response::json(422, {{"error", refused}, {"status", 422}, {"libraries", libraries}});
      }
    } else if (actor_request.path() == "/admin/errors") {
      // The public listener's last 5xx answers, with what their clients were not told.
      auto id = actor_request.query_param("request_id");
      if (actor_request.method != "GET" && actor_request.method != "HEAD") {
        response = Response::method_not_allowed("GET, HEAD", "use GET /admin/errors[?request_id=ID]");
      } else if (!id) {
        response = Response::error(id.error());
      } else if (!self->shared_->options.errors) {
        response = Response::json(200, {{"errors", nlohmann::json::array()}});
      } else {
        response = Response::json(200, {{"errors", self->shared_->options.errors->to_json(id->value_or(""))}});
      }
    } else if (metrics) {
      metrics::TextWriter out;
      self->shared_->runtime.write_metrics(out);
      self->shared_->write_metrics(out);
      if (self->shared_->options.extra_metrics) self->shared_->options.extra_metrics(out);
      response = Response{200, {{"Content-Type", std::string(metrics::content_type)}}, out.text()};
    } else {
      try {
        auto local = [&self](const Request& r) {
          auto answered = self->shared_->admin_api->handle(r);
          return answered ? std::move(*answered)
                          : Response::error(Code::not_found, "no admin route " + std::string(r.path()) +
                                                                 " (see README \"Operating cairn\")");
        };
        std::optional<Response> across;
        if (self->shared_->options.cluster_admin) across = self->shared_->options.cluster_admin(actor_request, local);
        response = across ? std::move(*across) : local(actor_request);
      } catch (const std::exception& e) {
        spdlog::error("admin {} {}: {}", actor_request.method, actor_request.path(), e.what());
        response = Response::error(Code::internal, std::string("the admin operation failed: ") + e.what());
      }
    }
    return response;
  };
  net::post(*shared_->admin_pool, [self = shared_from_this(), work = std::move(work), keep_alive, head]() mutable {
    Response response = work();
    net::post(self->stream_.get_executor(), [self, response = std::move(response), keep_alive, head]() {
      self->reply(response, keep_alive, head);
    });
  });
}

void HttpSession::to_actor(http::request<http::string_body> request, const std::string& binding,
                           const std::string& name, std::optional<std::string> target) {
  auto stub = shared_->runtime.get(binding, name);
  if (!stub) return reply(Response::error(stub.error()), request.keep_alive());
  if (const auto& cluster = shared_->options.cluster) {
    unsigned shard = stub->id().shard();
    auto where = cluster->locate(shard);
    if (cluster->internal) {
      // A forwarded request is never forwarded again: the sender's map is stale.
      if (where.kind != ShardLocation::Kind::here) {
        return reply(misdirected(shard), request.keep_alive());
      }
    } else if (where.kind != ShardLocation::Kind::here) {
      return forward(std::move(request), shard);
    }
  }
  Request actor_request = to_request(request);
  if (target) actor_request.target = std::move(*target);
  actor_request.client_address = client_address_;
  actor_request.request_id = request_id_;
  actor_request.traceparent = traceparent_;
  actor_request.claims = claims_;
  std::erase_if(actor_request.headers, [](const auto& field) { return is_node_header(field.first); });
  std::shared_ptr<SessionSink> sink;
  bool upgrade = beast::websocket::is_upgrade(request);
  if (upgrade) {
    sink = std::make_shared<SessionSink>(lane_);
    actor_request.websocket = shared_->reserve(sink);
  }
  SocketId socket = actor_request.websocket;
  bool keep_alive = request.keep_alive();
  bool head = request.method() == http::verb::head;
  std::uint64_t request_id = ++next_request_;
  wait_for(request_id);
  deadline_.expires_after(shared_->options.request_timeout);
  deadline_.async_wait([self = shared_from_this(), request_id, keep_alive, head](beast::error_code ec) {
    if (ec) return;  // answered in time
    self->answer_actor(request_id,
                       Response::error(Code::timeout,
                                       "the actor did not answer within " +
                                           std::to_string(self->shared_->options.request_timeout.count()) +
                                           " ms (--request-timeout); the request may still take effect"),
                       keep_alive, head);
  });
  // The answer arrives on a runtime thread; everything after it runs on this lane.
  stub->fetch(std::move(actor_request), [self = shared_from_this(), request = std::move(request),
                                         sink = std::move(sink), socket, request_id, keep_alive,
                                         head](Response response) mutable {
    net::post(self->stream_.get_executor(), [self, request = std::move(request), sink = std::move(sink),
                                             socket, request_id, keep_alive, head,
                                             response = std::move(response)]() mutable {
      bool in_time = self->waiting_for_ == request_id;
      if (in_time && socket != 0 && response.status == 101) {
        self->wait_for(0);
        self->deadline_.cancel();
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - self->started_).count();
        self->shared_->routes[self->stats_slot_]->record(101, elapsed);
        self->log_access(101, 0, elapsed);
        auto session = std::make_shared<WebSocketSession>(std::move(self->stream_), self->shared_,
                                                          socket, std::move(sink));
        session->hold(std::move(self->slot_));
        session->run(std::move(request));
        return;
      }
      if (socket != 0) {
        self->shared_->runtime.release_socket(socket);
        self->shared_->forget(socket);
      }
      // Late (already answered 504): dropped here; whatever it did in the actor stands.
      self->answer_actor(request_id, std::move(response), keep_alive, head);
    });
  });
}

Response HttpSession::misdirected(unsigned shard) {
  // Marked as the gateway's (an actor may answer 421 itself: that is relayed, not retried).
  return Response{421,
                  {{"Content-Type", "application/json"}, {"X-Cairn-Misdirected", "1"}},
                  nlohmann::json{{"error", "this node does not own shard " + std::to_string(shard) + " now"},
                                 {"status", 421}}
                      .dump()};
}

void HttpSession::answer_off_lane(bool keep_alive, const char* what, std::function<Response()> work) {
  answer_off_lane(keep_alive, what, std::move(work), *shared_->admin_pool);
}

void HttpSession::answer_off_lane(bool keep_alive, const char* what, std::function<Response()> work,
                                  net::thread_pool& pool) {
  // Blocking work (files, fsyncs, other nodes) runs on a worker pool; the reply comes back
  // to this session's lane. Anything the work throws is a 500 naming `what`.
  net::post(pool, [self = shared_from_this(), keep_alive, what, work = std::move(work)]() {
    Response response;
    try {
      response = work();
    } catch (const std::exception& e) {
      response = Response::error(Code::internal, std::string(what) + " failed: " + e.what());
    }
    net::post(self->stream_.get_executor(), [self, response = std::move(response), keep_alive]() {
      self->reply(response, keep_alive);
    });
  });
}

void HttpSession::handoff(http::request<http::string_body> request) {
  bool keep_alive = request.keep_alive();
  const auto& hook = shared_->options.cluster->handoff;
  if (!hook || !shared_->admin_pool) {
    return reply(Response::error(Code::unavailable, "this node takes no hand-off now (not joined yet)"), keep_alive);
  }
  answer_off_lane(keep_alive, "the hand-off here",
                  [hook, request = to_request(request)] { return hook(request); });
}

void HttpSession::replicate(http::request<http::string_body> request) {
  bool keep_alive = request.keep_alive();
  if (request.method() != http::verb::post) {
    return reply(Response::method_not_allowed("POST", "a replication batch is POSTed"), keep_alive);
  }
  const auto& hook = shared_->options.cluster->replicate;
  if (!hook || !shared_->replication_pool) {
    return reply(Response::error(Code::not_found, "this node follows no shard (no replication here)"), keep_alive);
  }
  answer_off_lane(keep_alive, "the replication batch", [hook, request = to_request(request)] { return hook(request); },
                  *shared_->replication_pool);
}

void HttpSession::internal_admin(http::request<http::string_body> request) {
  // Another node's admin listener asks about an actor this node owns (or for its names):
  // this node's own admin API answers, as its admin listener would.
  auto local = to_request(request);
  local.target = local.target.substr(std::string_view("/_cairn").size());
  answer_off_lane(request.keep_alive(), "the admin operation", [self = shared_from_this(), local] {
    auto answered = self->shared_->admin_api->handle(local);
    return answered ? std::move(*answered) : Response::error(Code::not_found, "no admin route " + local.target);
  });
}

void HttpSession::remote_call(http::request<http::string_body> request) {
  bool keep_alive = request.keep_alive();
  if (request.method() != http::verb::post) {
    return reply(Response::method_not_allowed("POST", "a call is POST {\"binding\", \"name\", \"method\", \"args\"}"),
                 keep_alive);
  }
  auto body = nlohmann::json::parse(request.body(), nullptr, false);
  auto text = [&](const char* field) -> const std::string* {
    if (!body.is_object() || !body.contains(field) || !body[field].is_string()) return nullptr;
    return &body[field].get_ref<const std::string&>();
  };
  const auto* binding = text("binding");
  const auto* name = text("name");
  const auto* method = text("method");
  if (binding == nullptr || name == nullptr || method == nullptr) {
    return reply(Response::error(Code::invalid_argument,
                                 "a call is a JSON object with string fields binding, name and method, and args"),
                 keep_alive);
  }
  auto stub = shared_->runtime.get(*binding, *name);
  if (!stub) return reply(Response::error(stub.error()), keep_alive);
  unsigned shard = stub->id().shard();
  if (shared_->options.cluster->locate(shard).kind != ShardLocation::Kind::here) {
    return reply(misdirected(shard), keep_alive);
  }
  std::uint64_t request_id = ++next_request_;
  wait_for(request_id);
  deadline_.expires_after(shared_->options.request_timeout);
  deadline_.async_wait([self = shared_from_this(), request_id, keep_alive](beast::error_code ec) {
    if (ec) return;
    self->answer_actor(request_id,
                       Response::error(Code::timeout, "the actor did not answer the call within " +
                                                          std::to_string(self->shared_->options.request_timeout.count()) +
                                                          " ms (--request-timeout); it may still take effect"),
                       keep_alive, false);
  });
  nlohmann::json args = body.contains("args") ? std::move(body["args"]) : nlohmann::json();
  TraceContext trace;
  if (const auto* id = text("request_id")) trace.request_id = *id;
  if (const auto* traceparent = text("traceparent")) trace.traceparent = *traceparent;
  // Here only: a shard lost meanwhile is the caller's to find again (421), never a second hop.
  stub->call_here(*method, std::move(args), [self = shared_from_this(), request_id, keep_alive,
                                             shard](Result<nlohmann::json> result) {
    Response response;
    if (!result && result.error().code == Code::unavailable &&
        self->shared_->options.cluster->locate(shard).kind != ShardLocation::Kind::here) {
      response = misdirected(shard);
    } else if (result) {
      response = Response::json(200, {{"result", std::move(*result)}});
    } else {
      // The code by name, so that the caller's node gives its actor the same error.
      auto error = result.error().to_json();
      error["code"] = code_name(result.error().code);
      response = Response::json(http_status(result.error().code), std::move(error));
    }
    net::post(self->stream_.get_executor(), [self, request_id, keep_alive, response = std::move(response)]() mutable {
      self->answer_actor(request_id, std::move(response), keep_alive, false);
    });
  }, std::move(trace));
}

void HttpSession::forward(http::request<http::string_body> request, unsigned shard) {
  // An upgrade that fails ends the connection, whatever its answer.
  bool keep_alive = request.keep_alive() && !beast::websocket::is_upgrade(request);
  bool head = request.method() == http::verb::head;
  // Who is calling, for the owner's actor (its internal listener trusts these from a node
  // only; X-Request-Id and traceparent are on the request already).
  request.set("X-Cairn-Client", client_address_);
  if (!claims_.is_null()) request.set("X-Cairn-Claims", claims_.dump());
  std::uint64_t request_id = ++next_request_;
  wait_for(request_id);
  auto until = std::chrono::steady_clock::now() + shared_->options.request_timeout;
  deadline_.expires_at(until);
  deadline_.async_wait([self = shared_from_this(), request_id, keep_alive, head](beast::error_code ec) {
    if (ec) return;
    self->retry_.cancel();
    self->answer_actor(request_id,
                       Response::error(Code::timeout,
                                       "the node that owns the actor did not answer within " +
                                           std::to_string(self->shared_->options.request_timeout.count()) +
                                           " ms (--request-timeout); the request may still take effect"),
                       keep_alive, head);
  });
  if (beast::websocket::is_upgrade(request)) {
    return upgrade_attempt(std::make_shared<http::request<http::string_body>>(std::move(request)), shard,
                           request_id, until);
  }
  auto outgoing = std::make_shared<http::request<http::string_body>>(std::move(request));
  outgoing->set("X-Cairn-Cluster-Token", shared_->options.cluster->token);
  outgoing->set("X-Cairn-Hop", "1");
  outgoing->keep_alive(true);
  outgoing->prepare_payload();
  forward_attempt(std::move(outgoing), shard, request_id, until, keep_alive, head);
}

void HttpSession::forward_attempt(std::shared_ptr<http::request<http::string_body>> outgoing, unsigned shard,
                                  std::uint64_t request_id, std::chrono::steady_clock::time_point until,
                                  bool keep_alive, bool head) {
  if (waiting_for_ != request_id) return;  // answered already (504)
  auto where = shared_->options.cluster->locate(shard);
  if (where.kind == ShardLocation::Kind::here) {
    // It moved here meanwhile: served as any request of this listener.
    wait_for(0);
    deadline_.cancel();
    outgoing->erase("X-Cairn-Cluster-Token");
    outgoing->erase("X-Cairn-Hop");
    outgoing->keep_alive(keep_alive);
    return handle(std::move(*outgoing));
  }
  if (where.kind == ShardLocation::Kind::nowhere) {
    return forward_later([self = shared_from_this(), outgoing, shard, request_id, until, keep_alive, head] {
      self->forward_attempt(outgoing, shard, request_id, until, keep_alive, head);
    }, request_id, until, keep_alive, head,
                         Response::error(Code::unavailable,
                                         "shard " + std::to_string(shard) +
                                             " has no owner now (its node is down or it is being handed over); "
                                             "try again shortly"));
  }
  lane_.forwards().send(
      where.host, where.port, outgoing, until,
      [self = shared_from_this(), outgoing, shard, request_id, until, keep_alive,
       head](Result<ForwardPool::Response> answer) mutable {
        if (self->waiting_for_ != request_id) return;
        if (!answer.ok()) {
          Response error = Response::error(answer.error());
          // Unreachable (nothing sent): its lease will expire or it comes back; try again.
          if (answer.error().code == Code::unavailable) {
            return self->forward_later([self, outgoing, shard, request_id, until, keep_alive, head] {
              self->forward_attempt(outgoing, shard, request_id, until, keep_alive, head);
            }, request_id, until, keep_alive, head, error);
          }
          self->shared_->forwards_failed.fetch_add(1, std::memory_order_relaxed);
          return self->answer_actor(request_id, error, keep_alive, head);
        }
        auto& got = answer.value();
        if (got.result_int() == 421 && got.count("X-Cairn-Misdirected") > 0) {  // our map is stale
          return self->forward_later([self, outgoing, shard, request_id, until, keep_alive, head] {
            self->forward_attempt(outgoing, shard, request_id, until, keep_alive, head);
          }, request_id, until, keep_alive, head,
                                     Response::error(Code::unavailable, "shard " + std::to_string(shard) +
                                                                            " is moving; try again shortly"));
        }
        self->shared_->forwards_answered.fetch_add(1, std::memory_order_relaxed);
        self->answer_actor(request_id, relayed(got), keep_alive, head);
      });
}

void HttpSession::forward_later(std::function<void()> again, std::uint64_t request_id,
                                std::chrono::steady_clock::time_point until, bool keep_alive, bool head,
                                Response last) {
  constexpr auto pause = std::chrono::milliseconds(50);
  if (std::chrono::steady_clock::now() + pause >= until) {
    shared_->forwards_failed.fetch_add(1, std::memory_order_relaxed);
    return answer_actor(request_id, std::move(last), keep_alive, head);
  }
  shared_->forwards_retried.fetch_add(1, std::memory_order_relaxed);
  retry_.expires_after(pause);
  retry_.async_wait([again = std::move(again)](beast::error_code ec) {
    if (!ec) again();
  });
}

Response HttpSession::relayed(const http::response<http::string_body>& got) {
  Response out{static_cast<int>(got.result_int()), {}, got.body()};
  for (const auto& field : got) {
    auto name = field.name();
    if (name == http::field::content_length || name == http::field::connection ||
        name == http::field::transfer_encoding || name == http::field::server || name == http::field::upgrade ||
        field.name_string() == "Content-Security-Policy" || field.name_string() == "X-Content-Type-Options" ||
        field.name_string() == "X-Cairn-Misdirected") {
      continue;
    }
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return out;
}

void HttpSession::upgrade_attempt(std::shared_ptr<http::request<http::string_body>> request, unsigned shard,
                                  std::uint64_t request_id, std::chrono::steady_clock::time_point until) {
  if (waiting_for_ != request_id) return;  // answered already (504)
  auto where = shared_->options.cluster->locate(shard);
  if (where.kind == ShardLocation::Kind::here) {
    wait_for(0);
    deadline_.cancel();
    return handle(std::move(*request));
  }
  auto again = [self = shared_from_this(), request, shard, request_id, until] {
    self->upgrade_attempt(request, shard, request_id, until);
  };
  if (where.kind == ShardLocation::Kind::nowhere) {
    return forward_later(again, request_id, until, false, false,
                         Response::error(Code::unavailable,
                                         "shard " + std::to_string(shard) +
                                             " has no owner now (its node is down or it is being handed over); "
                                             "try again shortly"));
  }
  WebSocketProxy::connect_upstream(
      lane_.context(), where.host, where.port, *request, shared_->options.cluster->token, until,
      [self = shared_from_this(), request, shard, request_id, until,
       again = std::move(again)](WebSocketProxy::Attempt attempt) mutable {
        if (self->waiting_for_ != request_id) return;  // answered 504 meanwhile: the upstream goes
        if (attempt.error) {
          if (attempt.error->code == Code::unavailable) {
            return self->forward_later(std::move(again), request_id, until, false, false,
                                       Response::error(*attempt.error));
          }
          self->shared_->forwards_failed.fetch_add(1, std::memory_order_relaxed);
          return self->answer_actor(request_id, Response::error(*attempt.error), false, false);
        }
        auto& got = *attempt.response;
        if (!attempt.upstream) {
          if (got.result_int() == 421 && got.count("X-Cairn-Misdirected") > 0) {  // our map is stale
            return self->forward_later(std::move(again), request_id, until, false, false,
                                       Response::error(Code::unavailable, "shard " + std::to_string(shard) +
                                                                              " is moving; try again shortly"));
          }
          // The owner's actor declined the upgrade: its answer is the client's.
          self->shared_->forwards_answered.fetch_add(1, std::memory_order_relaxed);
          return self->answer_actor(request_id, relayed(got), false, false);
        }
        self->shared_->forwards_answered.fetch_add(1, std::memory_order_relaxed);
        self->wait_for(0);
        self->deadline_.cancel();
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - self->started_).count();
        self->shared_->routes[self->stats_slot_]->record(101, elapsed);
        self->log_access(101, 0, elapsed);
        auto proxy = std::make_shared<WebSocketProxy>(std::move(self->stream_), std::move(attempt.upstream),
                                                      self->shared_);
        proxy->hold(std::move(self->slot_));
        proxy->run(std::move(*request), got);
      });
}

void HttpSession::answer_actor(std::uint64_t request_id, Response response, bool keep_alive,
                               bool head) {
  if (waiting_for_ != request_id) return;
  wait_for(0);
  deadline_.cancel();
  reply(response, keep_alive, head);
}

void HttpSession::serve_static(const http::request<http::string_body>& request) {
  auto url_path = request.target().substr(0, request.target().find('?'));
  const StaticMount* mount = nullptr;
  for (const auto& m : shared_->options.static_mounts) {
    if (url_path.starts_with(m.prefix) && (mount == nullptr || m.prefix.size() > mount->prefix.size())) mount = &m;
  }
  auto file = mount != nullptr ? resolve_static(mount->dir, url_path.substr(mount->prefix.size() - 1))
                               : resolve_static(shared_->options.public_dir, url_path);
  // The browser client module (gateway/client/) for every page, unless the site has its own.
  if (!file && url_path == "/cairn-client.js" && file.error().code == Code::not_found) {
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      return reply(Response::method_not_allowed("GET, HEAD", "static files answer GET and HEAD only"), request.keep_alive());
    }
    const auto* asset = find_admin_asset(url_path);
    return reply(Response{200, {{"Content-Type", std::string(asset->content_type)}, {"Cache-Control", "no-cache"}},
                          std::string(asset->body)},
                 request.keep_alive(), request.method() == http::verb::head);
  }
  if (!file) return reply(Response::error(file.error()), request.keep_alive());
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto refused = Response::error(Code::method_not_allowed, "static files answer GET and HEAD only");
    refused.headers.emplace_back("Allow", "GET, HEAD");
    return reply(refused, request.keep_alive());
  }
  // TODO(perf): cache small files; public/ holds a few kilobytes today.
  std::ifstream in(file->path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  if (!in) return reply(Response::error(Code::not_found, "cannot read file"), request.keep_alive());
  Response response{200, {{"Content-Type", file->content_type}, {"Cache-Control", "no-cache"}}, content.str()};
  reply(response, request.keep_alive(), request.method() == http::verb::head);
}

void HttpSession::log_access(int status, std::size_t bytes, double elapsed) {
  bool access = shared_->options.edge.access_log && spdlog::should_log(spdlog::level::info);
  if (!access && !spdlog::should_log(spdlog::level::debug)) return;
  if (log_method_.empty()) log_method_ = "-";  // refused before its request line was read
  if (log_path_.empty()) log_path_ = "-";
  ScopedLogContext about({request_id_, std::string(trace_id_of(traceparent_))});
  if (access) {
    // Common Log Format's facts (the time is the line's own), in one line; JSON logs get them
    // as fields too (made only for a JSON line).
    struct Fields {
      const HttpSession* self;
      int status;
      std::size_t bytes;
      double ms;
    } fields{this, status, bytes, elapsed * 1000};
    LogContext with_fields{request_id_, std::string(trace_id_of(traceparent_))};
    with_fields.add_fields = [](const void* of, nlohmann::json& line) {
      const auto& f = *static_cast<const Fields*>(of);
      line["client"] = f.self->client_address_;
      line["method"] = f.self->log_method_;
      line["path"] = f.self->log_path_;
      line["status"] = f.status;
      line["bytes"] = f.bytes;
      line["ms"] = f.ms;
    };
    with_fields.fields_of = &fields;
    ScopedLogContext scoped(std::move(with_fields));
    spdlog::info("access {} \"{} {}\" {} {} {:.2f}ms", client_address_, log_method_, log_path_, status, bytes,
                 elapsed * 1000);
  } else {
    spdlog::debug("{} {} {} {:.2f} ms", log_method_, log_path_, status, elapsed * 1000);
  }
}

void HttpSession::reply(const Response& response, bool keep_alive, bool head) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  shared_->routes[stats_slot_]->record(response.status, elapsed);
  if (request_id_.empty()) request_id_ = new_request_id();  // refused before it was read
  const std::string* body = &response.body;
  std::string rewritten;
  bool public_listener = shared_->edge != nullptr;
  if (public_listener && response.status >= 400 && !request_id_.empty()) {
    if (find_header(response.headers, detail::internal_error_header)) {
      // What an actor threw is for the operators (the log, GET /admin/errors), not the client.
      ScopedLogContext about({request_id_, std::string(trace_id_of(traceparent_))});
      spdlog::error("request {} {} {} answered {}: {}", request_id_, log_method_.empty() ? "-" : log_method_,
                    log_path_.empty() ? "-" : log_path_, response.status, loggable(response.body));
      auto error = Error{Code::internal, "internal error; the server's log tells what happened, under request id " +
                                             request_id_}
                       .to_json();
      error["request_id"] = request_id_;
      rewritten = error.dump();
    } else if (!response.body.empty() && response.body.front() == '{') {
      // Every JSON error body names the request (the gateway's, the runtime's, an actor's).
      auto error = nlohmann::json::parse(response.body, nullptr, false);
      if (error.is_object() && error.contains("error") && !error.contains("request_id")) {
        error["request_id"] = request_id_;
        rewritten = error.dump();
      }
    }
    if (!rewritten.empty()) body = &rewritten;
    if (response.status >= 500 && shared_->options.errors) {
      shared_->options.errors->add({std::chrono::system_clock::now(), request_id_, std::string(trace_id_of(traceparent_)),
                                    log_method_, log_path_, response.status,
                                    response.body.substr(0, 4096)});
    }
  }
  log_access(response.status, head ? 0 : body->size(), elapsed);
  response_ = std::make_shared<http::response<http::string_body>>();
  auto& res = *response_;
  res.version(11);
  res.result(static_cast<unsigned>(response.status));
  res.set(http::field::server, "cairn");
  // Sockets and fetches to this origin only (GatewayOptions::content_security_policy); no
  // response may be sniffed into another type.
  res.set("X-Content-Type-Options", "nosniff");
  if (!shared_->options.admin_token.empty()) {
    res.set("Content-Security-Policy", strict_content_security_policy);
  } else if (!shared_->options.content_security_policy.empty()) {
    res.set("Content-Security-Policy", shared_->options.content_security_policy);
  }
  for (const auto& [name, value] : response.headers) {
    // The internal listener relays the mark to the node that answers the client.
    if (public_listener && name == detail::internal_error_header) continue;
    res.set(name, value);
  }
  if (!request_id_.empty()) res.set("X-Request-Id", request_id_);
  if (!cors_origin_.empty()) {
    Headers cors;
    shared_->edge->add_cors_headers(cors, cors_origin_);
    for (const auto& [name, value] : cors) {
      if (name == "Vary" && res.find(http::field::vary) != res.end()) {
        // The actor's own Vary (Authorization, Cookie) must stay for caches: Origin is added.
        std::string vary(res[http::field::vary]);
        if (vary.find("Origin") == std::string::npos) res.set(http::field::vary, vary + ", Origin");
        continue;
      }
      res.set(name, value);
    }
  }
  res.keep_alive(keep_alive);
  res.body() = *body;
  res.prepare_payload();
  if (head) res.body().clear();  // the Content-Length of the GET stays
  stream_.expires_after(shared_->options.body_timeout);
  http::async_write(stream_, res,
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this(), !keep_alive));
}

void HttpSession::on_write(bool close, beast::error_code ec, std::size_t) {
  response_.reset();
  if (ec) return;
  if (close) {
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

}  // namespace cairn::gateway
