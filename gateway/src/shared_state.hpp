// What every session of one Gateway shares: the runtime, the options, and the sockets this
// gateway has reserved in the runtime's table (so stop() can close and release them).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "cairn/gateway/gateway.hpp"
#include "cairn/metrics.hpp"
#include "cairn/runtime.hpp"
#include "admin_api.hpp"
#include "edge.hpp"
#include "error_log.hpp"

namespace cairn::gateway {

class WebSocketSession;
class WebSocketProxy;

// Requests answered on one route: by status, and how long they took.
struct RouteStats {
  explicit RouteStats(std::string l) : label(std::move(l)) {}
  const std::string label;
  std::array<std::atomic<std::uint64_t>, 600> by_status{};
  metrics::Histogram seconds{metrics::seconds_buckets()};
  void record(int status, double elapsed) {
    by_status[static_cast<std::size_t>(status >= 100 && status < 600 ? status : 0)].fetch_add(
        1, std::memory_order_relaxed);
    seconds.observe(elapsed);
  }
};

struct SharedState {
  SharedState(Runtime& rt, GatewayOptions opts);

  Runtime& runtime;
  const GatewayOptions options;
  const bool admin_mode;  // options.admin_token is set
  const bool internal;    // the cluster's internal listener
  // The public listener's edge (options.edge made ready); null on the admin and internal ones.
  std::unique_ptr<Edge> edge;
  std::atomic<std::uint64_t> rate_limited{0};       // answered 429 by a rate limit
  std::atomic<std::uint64_t> unauthenticated{0};    // answered 401: no valid bearer token
  std::atomic<std::uint64_t> origins_refused{0};    // CORS: preflights and upgrades refused 403
  std::atomic<std::uint64_t> hook_answered{0};      // answered by EdgeOptions::on_request

  // The routes' statistics: slot 0 "other" (refused before routing), then the slots below.
  enum Slot : std::size_t { other = 0, static_files = 1, healthz = 2, metrics_route = 3, admin_route = 4, inspector = 5, first_route = 6 };
  std::vector<std::unique_ptr<RouteStats>> routes;
  std::size_t route_slot(std::size_t configured_route) const { return first_route + configured_route; }
  std::size_t object_slot(const std::string& binding) const {
    for (std::size_t i = 0; i < options.object_bindings.size(); ++i) {
      if (options.object_bindings[i] == binding) return first_route + options.routes.size() + i;
    }
    return other;
  }
  void write_metrics(metrics::TextWriter& out) const;

  // The admin API and the threads its blocking operations run on (admin mode only).
  std::unique_ptr<AdminApi> admin_api;
  std::unique_ptr<boost::asio::thread_pool> admin_pool;
  // The internal listener's: replication batches, each waiting on the follower's fsyncs, as
  // many at once as an owner's storage threads send (never queued behind a hand-off).
  std::unique_ptr<boost::asio::thread_pool> replication_pool;

  SocketId reserve(std::shared_ptr<SocketSink> sink) {
    SocketId id = runtime.reserve_socket(std::move(sink));
    std::lock_guard lock(mutex);
    sockets.emplace(id, std::weak_ptr<WebSocketSession>{});
    return id;
  }
  void opened(SocketId id, std::weak_ptr<WebSocketSession> session) {
    std::lock_guard lock(mutex);
    sockets[id] = std::move(session);
  }
  // The connection is gone: the runtime's entry goes too (after the actor heard of it).
  void forget(SocketId id) {
    std::lock_guard lock(mutex);
    sockets.erase(id);
  }

  // Cluster mode: a WebSocket relayed to the node that runs its actor (WebSocketProxy).
  std::uint64_t proxy_opened(std::weak_ptr<WebSocketProxy> proxy) {
    std::lock_guard lock(mutex);
    proxies.emplace(++last_proxy, std::move(proxy));
    websockets_forwarded.fetch_add(1, std::memory_order_relaxed);
    return last_proxy;
  }
  void forget_proxy(std::uint64_t id) {
    std::lock_guard lock(mutex);
    proxies.erase(id);
  }

  // Takes one of options.max_connections; null if all are taken. The connection holds the
  // slot (HTTP, then WebSocket session) and gives it back when the last holder goes.
  static std::shared_ptr<void> take_connection_slot(const std::shared_ptr<SharedState>& self) {
    if (self->connections.fetch_add(1, std::memory_order_relaxed) >= self->options.max_connections) {
      self->connections.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    return std::shared_ptr<void>(self.get(), [self](void*) {
      self->connections.fetch_sub(1, std::memory_order_relaxed);
    });
  }

  // TLS: the context new connections get (a reload replaces it; open connections keep
  // theirs), or null: plain TCP.
  std::shared_ptr<boost::asio::ssl::context> tls_context() const {
    std::lock_guard lock(mutex);
    return tls;
  }

  mutable std::mutex mutex;
  std::shared_ptr<boost::asio::ssl::context> tls;  // guarded by mutex
  std::map<SocketId, std::weak_ptr<WebSocketSession>> sockets;
  std::map<std::uint64_t, std::weak_ptr<WebSocketProxy>> proxies;  // guarded by mutex
  std::uint64_t last_proxy = 0;                                     // guarded by mutex
  std::atomic<std::size_t> connections{0};  // open HTTP and WebSocket connections
  std::atomic<bool> draining{false};         // a stop signal came: /readyz says 503
  std::atomic<std::uint64_t> connections_refused{0};  // answered 503: max_connections reached
  // Cluster mode: requests sent to the node that owns their actor, by what came of each try.
  std::atomic<std::uint64_t> forwards_answered{0};    // the owner answered (relayed)
  // Requests taken and not yet answered, over every connection: a stop waits for them (a
  // forwarded request waiting for its shard's new owner would otherwise be cut, and its sender
  // could not know whether it took effect).
  std::atomic<std::int64_t> requests_waiting{0};
  std::atomic<std::uint64_t> forwards_retried{0};     // 421 (moved) or owner unreachable: tried again
  std::atomic<std::uint64_t> forwards_failed{0};      // answered here: 503 (no owner in time) or 504
  std::atomic<std::uint64_t> websockets_forwarded{0};  // WebSockets relayed to their owner, ever
};

}  // namespace cairn::gateway
