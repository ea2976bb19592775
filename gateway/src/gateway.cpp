// Gateway: the listener, the I/O threads and an orderly stop.
#include "cairn/gateway/gateway.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <thread>

#include "cairn/limits.hpp"
#include "http_session.hpp"
#include "routes.hpp"
#include "io_lane.hpp"
#include "websocket_proxy.hpp"
#include "websocket_session.hpp"

namespace cairn::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

SharedState::SharedState(Runtime& rt, GatewayOptions opts)
    : runtime(rt), options(std::move(opts)), admin_mode(!options.admin_token.empty()),
      internal(options.cluster && options.cluster->internal) {
  if (!admin_mode && !internal) edge = std::make_unique<Edge>(options.edge);
  for (const char* label : {"other", "static", "/healthz", "/metrics", "/admin", "/inspector"}) {
    routes.push_back(std::make_unique<RouteStats>(label));
  }
  for (const auto& route : options.routes) routes.push_back(std::make_unique<RouteStats>(route.path));
  for (const auto& binding : options.object_bindings) {
    routes.push_back(std::make_unique<RouteStats>(std::string(objects_prefix) + binding));
  }
  if (admin_mode) {
    admin_api = std::make_unique<AdminApi>(runtime);
    admin_pool = std::make_unique<boost::asio::thread_pool>(2);
  } else if (options.cluster && options.cluster->internal) {
    admin_api = std::make_unique<AdminApi>(runtime);  // other nodes' admin listeners ask it
    admin_pool = std::make_unique<boost::asio::thread_pool>(2);  // hand-offs and admin operations
    if (options.cluster->replicate) {
      replication_pool = std::make_unique<boost::asio::thread_pool>(limits::default_storage_threads);
    }
  }
}

void SharedState::write_metrics(metrics::TextWriter& out) const {
  const char* listener = admin_mode ? "admin" : options.cluster && options.cluster->internal ? "internal" : "public";
  out.family("cairn_http_requests_total", "counter", "HTTP requests answered, by route and status");
  for (const auto& route : routes) {
    for (std::size_t status = 0; status < route->by_status.size(); ++status) {
      auto n = route->by_status[status].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out.sample("cairn_http_requests_total",
                 {{"listener", listener}, {"route", route->label}, {"status", std::to_string(status)}},
                 static_cast<double>(n));
    }
  }
  out.family("cairn_http_request_duration_seconds", "histogram",
             "From a request's header to its answer, by route");
  for (const auto& route : routes) {
    auto snapshot = route->seconds.snapshot();
    if (snapshot.count == 0) continue;
    out.histogram("cairn_http_request_duration_seconds", {{"listener", listener}, {"route", route->label}}, snapshot);
  }
  out.family("cairn_http_connections", "gauge", "Open HTTP and WebSocket connections");
  out.sample("cairn_http_connections", {{"listener", listener}}, static_cast<double>(connections.load()));
  out.family("cairn_http_connections_refused_total", "counter",
             "Connections answered 503 at once: --max-connections reached");
  out.sample("cairn_http_connections_refused_total", {{"listener", listener}},
             static_cast<double>(connections_refused.load()));
  if (edge) {
    out.family("cairn_http_edge_refusals_total", "counter",
               "Public requests the gateway answered itself before an actor saw them: rate limited (429), "
               "no valid bearer token (401), a CORS origin refused (403), answered by the on_request hook");
    out.sample("cairn_http_edge_refusals_total", {{"reason", "rate_limited"}}, static_cast<double>(rate_limited.load()));
    out.sample("cairn_http_edge_refusals_total", {{"reason", "unauthenticated"}},
               static_cast<double>(unauthenticated.load()));
    out.sample("cairn_http_edge_refusals_total", {{"reason", "origin"}}, static_cast<double>(origins_refused.load()));
    out.sample("cairn_http_edge_refusals_total", {{"reason", "hook"}}, static_cast<double>(hook_answered.load()));
    if (!options.edge.rate_limits.empty()) {
      out.family("cairn_http_rate_limited_clients", "gauge",
                 "Clients the rate limits remember now (at most --rate-limit-clients per limit)");
      out.sample("cairn_http_rate_limited_clients", {}, static_cast<double>(edge->rate_limited_clients()));
    }
  }
  if (options.cluster && !options.cluster->internal) {
    out.family("cairn_cluster_forwards_total", "counter",
               "Tries of sending a request to the node that owns its actor: answered (relayed), retried "
               "(the shard moved or its node was unreachable), failed (503 or 504 from this node)");
    out.sample("cairn_cluster_forwards_total", {{"outcome", "answered"}}, static_cast<double>(forwards_answered.load()));
    out.sample("cairn_cluster_forwards_total", {{"outcome", "retried"}}, static_cast<double>(forwards_retried.load()));
    out.sample("cairn_cluster_forwards_total", {{"outcome", "failed"}}, static_cast<double>(forwards_failed.load()));
    std::size_t relaying = 0;
    {
      std::lock_guard lock(mutex);
      relaying = proxies.size();
    }
    out.family("cairn_cluster_websockets_forwarded_total", "counter",
               "WebSockets whose actor runs on another node, relayed to it");
    out.sample("cairn_cluster_websockets_forwarded_total", {}, static_cast<double>(websockets_forwarded.load()));
    out.family("cairn_cluster_websockets_relayed", "gauge", "Relayed WebSockets open now");
    out.sample("cairn_cluster_websockets_relayed", {}, static_cast<double>(relaying));
  }
}

struct Gateway::Impl {
  Impl(Runtime& runtime, GatewayOptions options)
      : shared(std::make_shared<SharedState>(runtime, std::move(options))),
        lanes(make_lanes(shared->options.io_threads)),
        acceptor(lanes[0]->context()) {}

  static std::vector<std::unique_ptr<IoLane>> make_lanes(std::size_t n) {
    std::vector<std::unique_ptr<IoLane>> out;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, n); ++i) out.push_back(std::make_unique<IoLane>());
    return out;
  }

  void do_accept() {
    // Connections go round-robin to the lanes; a connection lives on its lane for good.
    IoLane& lane = *lanes[next_lane++ % lanes.size()];
    acceptor.async_accept(lane.context(), [this, &lane](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // EMFILE and friends: the failure is the client's connection only. Pause a moment
        // so a process out of descriptors does not spin on a listen queue it cannot drain.
        spdlog::warn("accept failed: {}", ec.message());
        retry.expires_after(std::chrono::milliseconds(50));
        retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor.is_open()) do_accept();
        });
        return;
      }
      socket.set_option(tcp::no_delay(true), ec);
      if (auto slot = SharedState::take_connection_slot(shared)) {
        std::make_shared<HttpSession>(std::move(socket), shared, lane, std::move(slot))->run();
      } else {
        refuse(std::move(socket));
      }
      do_accept();
    });
  }

  // Past max_connections: a 503 written straight into the socket's send buffer, then closed.
  void refuse(tcp::socket socket) {
    shared->connections_refused.fetch_add(1, std::memory_order_relaxed);
    static const std::string answer = [] {
      std::string body = Error{Code::unavailable,
                               "the server has too many open connections (--max-connections); "
                               "try again shortly"}.to_json().dump();
      return "HTTP/1.1 503 Service Unavailable\r\nServer: cairn\r\nContent-Type: application/json\r\n"
             "Retry-After: " + std::to_string(retry_after_seconds) +
             "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    auto held = std::make_shared<tcp::socket>(std::move(socket));
    net::async_write(*held, net::buffer(answer), [held](beast::error_code, std::size_t) {
      beast::error_code ignored;
      held->shutdown(tcp::socket::shutdown_both, ignored);
      held->close(ignored);
    });
  }

  std::shared_ptr<SharedState> shared;
  std::vector<std::unique_ptr<IoLane>> lanes;  // one per I/O thread
  std::size_t next_lane = 0;                   // the acceptor's lane only
  tcp::acceptor acceptor;                      // on lane 0
  net::steady_timer retry{acceptor.get_executor()};  // after a failed accept
  std::vector<std::thread> threads;
  // Keep the I/O threads running while no connection is open and the acceptor is closed.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  bool accepting = true;
  bool stopped = false;
};

namespace {

// A TLS server context from PEM files: TLS 1.2 and later, the key checked against the
// certificate. Throws std::runtime_error naming the files.
std::shared_ptr<net::ssl::context> make_tls_context(const std::string& cert, const std::string& key) {
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  try {
    context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                         net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                         net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->use_certificate_chain_file(cert);
    context->use_private_key_file(key, net::ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot use --tls-cert " + cert + " with --tls-key " + key + ": " + e.code().message());
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    throw std::runtime_error("--tls-key " + key + " is not the key of --tls-cert " + cert);
  }
  if (X509* certificate = SSL_CTX_get0_certificate(context->native_handle())) {
    if (X509_cmp_current_time(X509_get0_notAfter(certificate)) < 0) {
      spdlog::warn("the TLS certificate {} has expired: clients will refuse it", cert);
    }
  }
  return context;
}

// Takes over a socket someone else bound and made listen (systemd's socket activation). It
// must be a listening TCP socket; it is closed on exec from now on.
void adopt_listening_socket(tcp::acceptor& acceptor, int fd) {
  auto refuse = [fd](const std::string& why) {
    ::close(fd);
    throw std::runtime_error("the socket passed as descriptor " + std::to_string(fd) + " " + why);
  };
  int type = 0;
  int listening = 0;
  socklen_t length = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) {
    refuse("is not a stream socket");
  }
  length = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || listening == 0) {
    refuse("is not listening");
  }
  sockaddr_storage local{};
  length = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
      (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
    refuse("is not a TCP/IP socket");
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  beast::error_code ec;
  acceptor.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) refuse("cannot be used: " + ec.message());
}

}  // namespace

Gateway::Gateway(Runtime& runtime, GatewayOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {
  const auto& opts = impl_->shared->options;
  beast::error_code ec;
  auto& acceptor = impl_->acceptor;
  if (opts.tls_cert_file.empty() != opts.tls_key_file.empty()) {
    throw std::runtime_error("TLS needs both --tls-cert and --tls-key");
  }
  if (!opts.tls_cert_file.empty()) impl_->shared->tls = make_tls_context(opts.tls_cert_file, opts.tls_key_file);
  if (opts.listen_fd >= 0) {
    adopt_listening_socket(acceptor, opts.listen_fd);
    return;
  }
  auto address = net::ip::make_address(opts.host, ec);
  if (ec) throw std::runtime_error("invalid --host '" + opts.host + "': " + ec.message());
  tcp::endpoint endpoint(address, opts.port);
  auto check = [&](const char* what) {
    if (ec) {
      throw std::runtime_error(std::string("cannot ") + what + " " + opts.host + ":" +
                               std::to_string(opts.port) + ": " + ec.message());
    }
  };
  acceptor.open(endpoint.protocol(), ec);
  check("open");
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  check("configure");
  acceptor.bind(endpoint, ec);
  check("bind");
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  check("listen on");
}

Gateway::~Gateway() { stop(); }

std::string check_tls_files(const std::string& cert_file, const std::string& key_file) {
  try {
    make_tls_context(cert_file, key_file);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

bool Gateway::tls() const { return impl_->shared->tls_context() != nullptr; }

std::string Gateway::reload_tls() {
  const auto& opts = impl_->shared->options;
  if (opts.tls_cert_file.empty()) return "this listener has no TLS";
  try {
    auto fresh = make_tls_context(opts.tls_cert_file, opts.tls_key_file);
    std::lock_guard lock(impl_->shared->mutex);
    impl_->shared->tls = std::move(fresh);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string Gateway::address() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? std::string() : endpoint.address().to_string();
}

bool Gateway::responsive(std::chrono::milliseconds limit) const {
  auto ran = std::make_shared<std::promise<void>>();
  auto future = ran->get_future();
  net::post(impl_->acceptor.get_executor(), [ran] { ran->set_value(); });
  return future.wait_for(limit) == std::future_status::ready;
}

void Gateway::write_metrics(metrics::TextWriter& out) const { impl_->shared->write_metrics(out); }

std::uint16_t Gateway::port() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void Gateway::start() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] { impl->do_accept(); });
  for (auto& lane : impl_->lanes) {
    impl_->work.push_back(net::make_work_guard(lane->context()));
    impl_->threads.emplace_back([&ioc = lane->context()] { ioc.run(); });
  }
}

void Gateway::set_draining() { impl_->shared->draining.store(true); }

void Gateway::stop_accepting() {
  if (!impl_->accepting) return;
  impl_->accepting = false;
  std::promise<void> done;
  auto closed = done.get_future();
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get(), &done] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    done.set_value();
  });
  if (!impl_->threads.empty()) {
    closed.wait();
  } else {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  }
}

void Gateway::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (!impl_->threads.empty()) {
    stop_accepting();
    // Say goodbye to every WebSocket (1001: going away), then give the handshakes a moment.
    // Taken out under the lock, closed after it: the last reference may go on a lane's
    // thread meanwhile, and a proxy's destructor takes the same lock.
    std::vector<std::shared_ptr<WebSocketSession>> sessions;
    std::vector<std::shared_ptr<WebSocketProxy>> relays;
    {
      std::lock_guard lock(impl_->shared->mutex);
      for (auto& [id, weak] : impl_->shared->sockets) {
        if (auto session = weak.lock()) sessions.push_back(std::move(session));
      }
      for (auto& [id, weak] : impl_->shared->proxies) {
        if (auto proxy = weak.lock()) relays.push_back(std::move(proxy));
      }
    }
    for (auto& session : sessions) {
      net::post(session->executor(), [session] { session->close(1001, "server shutting down"); });
    }
    for (auto& proxy : relays) {
      net::post(proxy->executor(), [proxy] { proxy->close(1001, "server shutting down"); });
    }
    sessions.clear();
    relays.clear();
    // Requests under way are answered first (a forwarded one waiting for its shard's new
    // owner reaches it), within a bound: a stop never waits a request's whole timeout.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(impl_->shared->mutex);
        if (impl_->shared->sockets.empty() && impl_->shared->proxies.empty() &&
            impl_->shared->requests_waiting.load() <= 0) {
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  impl_->work.clear();
  for (auto& lane : impl_->lanes) lane->context().stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  // Sessions still held by abandoned handlers die with them; release what they reserved.
  std::vector<SocketId> left;
  {
    std::lock_guard lock(impl_->shared->mutex);
    for (auto& [id, weak] : impl_->shared->sockets) left.push_back(id);
    impl_->shared->sockets.clear();
  }
  for (SocketId id : left) impl_->shared->runtime.release_socket(id);
  if (impl_->shared->admin_pool) impl_->shared->admin_pool->join();
  if (impl_->shared->replication_pool) impl_->shared->replication_pool->join();
}

}  // namespace cairn::gateway
