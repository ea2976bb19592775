// Gateway: the HTTP/1.1 and WebSocket front door (Boost.Beast). Routes requests to actors by
// path and a query parameter naming the actor, or by the generic /objects/<BINDING>/<name>/
// route; serves static files; answers /healthz itself (with the live instance and socket
// counts).
// One per process; its I/O threads never block on an actor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cairn/gateway/edge.hpp"
#include "cairn/limits.hpp"
#include "cairn/metrics.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

// Requests to `path` go, whole, to the fetch() of actor (binding, value of `name_param`),
// or, when `fixed_name` is set, always to actor (binding, fixed_name): Workers'
// idFromName("foo") for a service with one instance. Without the parameter a request goes
// to `default_name` if set (the map seed's `?id=` defaulting to "default-map"), else 400.
struct Route {
  std::string path;        // exact match, e.g. "/seats"
  std::string binding;     // e.g. "FLIGHT"
  std::string name_param;  // e.g. "flightId"
  std::string fixed_name = {};    // e.g. "foo"; name_param is then unused
  std::string default_name = {};  // e.g. "default-map"
};

// Content-Security-Policy of cairn's own pages (the inspector) and of `--content-security-policy
// strict`: the page's own files only, no inline code.
inline constexpr const char* strict_content_security_policy =
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
// The public listener's default: as strict, except that a page may run its own inline
// scripts and styles (the tutorial's index.html does, and a user's public/ should work as
// written); nothing from another origin, no plugins, no framing.
inline constexpr const char* default_content_security_policy =
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'";

// Cluster mode (README "Running a cluster"): where a shard's actors run now.
struct ShardLocation {
  enum class Kind { here, there, nowhere };
  Kind kind = Kind::here;
  std::string node;  // there: the owner's node id
  std::string host;  // there: its internal listener
  std::string port;
};
// The last requests answered 5xx, with what the client was not told (an actor's exception):
// the public listener adds to it, the admin listener shows it (GET /admin/errors). Any thread.
class ErrorLog;

struct ClusterRouting {
  // Where shard `shard` (ActorId::shard()) runs now. Any I/O thread; must not block.
  std::function<ShardLocation(unsigned shard)> locate;
  // The nodes' shared secret: a forwarded request carries it, the internal listener
  // refuses any request without it.
  std::string token;
  // This listener is the internal one: it takes forwarded requests only, serves actors of
  // the shards this node owns and answers 421 for the others (a forwarded request is never
  // forwarded again).
  bool internal = false;
  // The internal listener: a hand-off's requests (/_cairn/handoff/...: a shard's files and
  // its commit, from the node handing it over). Runs off the I/O threads (it writes and
  // fsyncs files). Unset: 404.
  std::function<Response(const Request&)> handoff;
  // The internal listener: replication batches (POST /_cairn/replicate, the body a batch in
  // the wire form of cairn/replication.hpp) from the owners of the shards this node follows.
  // Runs off the I/O threads (it writes and fsyncs files). Unset: 404.
  std::function<Response(const Request&)> replicate;
};

// Static files of one part of the site: URL paths under `prefix` (which starts and ends with
// '/', e.g. "/chat/") are files under `dir` ("/chat/" is dir/index.html), instead of
// public_dir's. The config file's [bindings.NAME] static = {prefix, dir}.
struct StaticMount {
  std::string prefix;
  std::filesystem::path dir;
};

struct GatewayOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8787;  // 0 picks a free port; port() tells which
  // A TCP socket already bound and listening (systemd's socket activation, sd_listen_fds):
  // served instead of binding host:port. The Gateway owns it from then on and closes it when
  // it stops accepting (whoever passed it keeps its own copy: connections then wait in the
  // kernel's queue for the next process).
  int listen_fd = -1;
  // TLS (HTTPS, WSS) with this certificate chain and private key, PEM files; both or neither.
  // TLS 1.2 and later. Gateway::reload_tls() reads them again (cairn-server: on SIGHUP).
  std::string tls_cert_file = {};
  std::string tls_key_file = {};
  std::filesystem::path public_dir;  // empty: no static files
  std::vector<StaticMount> static_mounts = {};  // the longest matching prefix serves
  // Sent on every response of the public listener; empty: none. The admin listener always
  // sends strict_content_security_policy.
  std::string content_security_policy = default_content_security_policy;
  std::size_t io_threads = 1;
  std::vector<Route> routes;
  // Bindings served by the generic route /objects/<BINDING>/<name>/<rest>: the request (HTTP
  // or WebSocket upgrade) goes to that instance's fetch() with the target /<rest>[?query].
  std::vector<std::string> object_bindings;
  // Who is calling, request ids and traces, CORS, tokens, rate limits, the access log and
  // the application's own hook (the public listener; cairn/gateway/edge.hpp).
  EdgeOptions edge = {};
  // The public listener records its 5xx answers here, the admin listener reads them (both
  // given the same one; null: none kept).
  std::shared_ptr<ErrorLog> errors = {};
  // Hostile and slow clients (defaults in limits.hpp; see limits::default_header_timeout).
  std::chrono::milliseconds keep_alive_timeout = limits::default_keep_alive_timeout;
  std::chrono::milliseconds header_timeout = limits::default_header_timeout;
  std::chrono::milliseconds body_timeout = limits::default_body_timeout;
  // An actor's answer later than this is dropped and the client gets 504.
  std::chrono::milliseconds request_timeout = limits::default_request_timeout;
  // Connections past this many are answered 503 and closed at once.
  std::size_t max_connections = limits::default_max_connections;
  // Set: this listener is the admin API instead of the actors' front door (README
  // "Operating cairn"): GET /metrics, /admin/... and the inspector page at /; everything but
  // /healthz and the page's own files needs "Authorization: Bearer <admin_token>". Routes,
  // object_bindings and public_dir are then not served.
  std::string admin_token = {};
  // What the admin listener's /metrics writes after the runtime's metrics (cairn-server:
  // the public gateway's, Gateway::write_metrics).
  std::function<void(metrics::TextWriter&)> extra_metrics = {};
  // The admin listener, cluster mode: GET /admin/cluster answers what this returns (the
  // cluster as this node sees it; `with_shards`: every shard's owner and epoch too).
  std::function<nlohmann::json(bool with_shards)> cluster_status = {};
  // The admin listener: POST /admin/reload answers {"libraries": what this returns}
  // (PluginSet::reload: new versions of the plugins' libraries); unset: 404.
  std::function<nlohmann::json()> reload = {};
  // Why this node should get no traffic now ("" if it should), for GET /readyz (cluster
  // mode: fenced, or no shard owned). Any I/O thread; must not block.
  std::function<std::string()> not_ready = {};
  // The admin listener, cluster mode: answers an admin request that concerns other nodes
  // (an actor another node owns, a list of names), or nullopt for this node's own API
  // (`local`). Runs off the I/O threads.
  std::function<std::optional<Response>(const Request&, const std::function<Response(const Request&)>& local)>
      cluster_admin = {};
  // Set: cluster mode. A request for an actor whose shard runs on another node goes there
  // (over kept-alive connections to its internal listener); one whose shard has no owner
  // waits for one until request_timeout, then gets a retryable 503.
  std::shared_ptr<const ClusterRouting> cluster = {};
};

// "" if a TLS listener could use this certificate chain and key (PEM files), else what is
// wrong with them (unreadable, not PEM, the key not the certificate's).
std::string check_tls_files(const std::string& cert_file, const std::string& key_file);

class Gateway {
 public:
  // Binds and listens at once. Throws std::runtime_error if the address cannot be used or
  // the TLS certificate and key cannot be.
  // `runtime` must outlive the Gateway, and be shut down (Runtime::shutdown) before the
  // Gateway is stopped or destroyed: until then the runtime may hold answers and socket
  // sends addressed to the Gateway's I/O threads. The order cairn-server uses:
  // stop_accepting(), runtime.shutdown(), stop().
  Gateway(Runtime& runtime, GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  std::uint16_t port() const;
  // The address it listens on (the passed socket's own when listen_fd was given).
  std::string address() const;
  // Whether this listener speaks TLS.
  bool tls() const;
  // Reads the certificate and key again; new connections get them, open ones keep theirs.
  // Returns "" or what was wrong (the old ones then stay). Any thread.
  std::string reload_tls();
  // True when the acceptor's I/O thread ran a task within `limit` (systemd's watchdog asks).
  bool responsive(std::chrono::milliseconds limit) const;
  // Appends this listener's HTTP metrics (requests by route and status, latency by route,
  // open and refused connections) in the Prometheus text format. Any thread.
  void write_metrics(metrics::TextWriter& out) const;
  // Starts the I/O threads; returns at once.
  void start();
  // Stops accepting connections; open ones keep being served.
  void stop_accepting();
  // From now on GET /readyz answers 503 "draining" (the process stops soon); all else is
  // served as before. Any thread.
  void set_draining();
  // Closes every WebSocket (1001), stops the I/O threads and joins them. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::gateway
