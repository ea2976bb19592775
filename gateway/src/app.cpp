// run_app(): standard flags, Runtime, Gateway, serve().
#include "cairn/gateway/app.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <shared_mutex>
#include <thread>
#include <condition_variable>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "cairn/cli/duration.hpp"
#include "cairn/cli/program.hpp"
#include "cairn/cluster/membership.hpp"
#include "cairn/gateway/serve.hpp"
#include "cairn/limits.hpp"
#include "cairn/replication.hpp"
#include "cairn/runtime.hpp"
#include "cairn/log_context.hpp"
#include "cluster_admin.hpp"
#include "config_tables.hpp"
#include "error_log.hpp"
#include "handoff.hpp"
#include "plugins.hpp"
#include "remote_calls.hpp"
#include "promotion.hpp"
#include "replicator.hpp"
#include "systemd.hpp"

namespace cairn::gateway {
namespace {

// --log-format json: one JSON object per line, the message escaped.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::json line{{"time", fmt::format("{}.{:03}Z", stamp, ms % 1000)},
                        {"level", std::string(level.data(), level.size())},
                        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
                        {"thread", msg.thread_id},
                        {"message", std::string(msg.payload.data(), msg.payload.size())}};
    if (const auto* about = current_log_context()) {
      if (!about->request_id.empty()) line["request_id"] = about->request_id;
      if (!about->trace_id.empty()) line["trace_id"] = about->trace_id;
      if (about->add_fields != nullptr) about->add_fields(about->fields_of, line);
    }
    auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// --log-format text: the request and trace a line is about (cairn/log_context.hpp) after it.
class LogContextFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto* about = current_log_context();
    if (about == nullptr) return;
    auto append = [&dest](std::string_view text) { dest.append(text.data(), text.data() + text.size()); };
    if (!about->request_id.empty()) {
      append(" request_id=");
      append(about->request_id);
    }
    if (!about->trace_id.empty()) {
      append(" trace_id=");
      append(about->trace_id);
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<LogContextFlag>(); }
};

// The admin token: the file's first line, trimmed; empty if it cannot be read.
std::string read_token(const std::string& file, std::string& problem) {
  std::ifstream in(file);
  if (!in) {
    problem = "cannot read --admin-token-file " + file;
    return {};
  }
  std::string token;
  std::getline(in, token);
  auto first = token.find_first_not_of(" \t\r");
  auto last = token.find_last_not_of(" \t\r");
  token = first == std::string::npos ? std::string() : token.substr(first, last - first + 1);
  if (token.size() < 16) problem = "the admin token in " + file + " must be at least 16 characters";
  return token;
}

// Runs `work` every `period` on its own thread until destroyed.
class Periodic {
 public:
  Periodic(std::chrono::milliseconds period, std::function<void()> work)
      : thread_([this, period, work = std::move(work)] {
          std::unique_lock lock(mutex_);
          while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
            lock.unlock();
            try {
              work();
            } catch (const std::exception& e) {
              spdlog::error("{}", e.what());
            }
            lock.lock();
          }
        }) {}
  ~Periodic() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is made
};

// Cluster mode's link between the runtime (which needs its Ownership before the cluster
// listener is bound) and the Membership (which needs that listener's address to join).
class ClusterLink final : public Ownership {
 public:
  void attach(cluster::Membership* membership, ShardMover* mover) {
    std::unique_lock lock(replication_);
    mover_.store(mover);
    membership_.store(membership);
  }
  std::optional<std::int64_t> epoch(unsigned shard) const override {
    auto* membership = membership_.load();
    if (membership == nullptr) return std::nullopt;
    return membership->epoch(shard);
  }
  // Why this node should get no traffic now ("" if it should): /readyz.
  std::string not_ready() const {
    auto* membership = membership_.load();
    if (membership == nullptr) return "not joined to the cluster yet";
    if (membership->fenced()) return "fenced: its etcd lease may have lapsed";
    if (membership->owned().empty()) return "it owns no shard";
    return "";
  }
  // Replication (HttpReplicatorOptions): under a lock that attach() takes, so that no call is
  // in a membership that is being destroyed.
  std::optional<HttpReplicatorOptions::Follower> follower(unsigned shard) const {
    std::shared_lock lock(replication_);
    auto* membership = membership_.load();
    if (membership == nullptr) return std::nullopt;
    auto view = membership->follower(shard);
    if (!view) return std::nullopt;
    return HttpReplicatorOptions::Follower{view->node, view->address, view->in_sync};
  }
  Result<bool> record(unsigned shard, const std::string& node, bool counted) const {
    std::shared_lock lock(replication_);
    auto* membership = membership_.load();
    if (membership == nullptr) return false;
    return membership->record_in_sync(shard, node, counted);
  }
  // True if this node owns `shard` or claimed it, as far as it has seen (fenced or not).
  bool owned_here(unsigned shard) const {
    std::shared_lock lock(replication_);
    auto* membership = membership_.load();
    if (membership == nullptr) return false;
    if (membership->epoch(shard)) return true;
    auto owner = membership->owner(shard);
    return owner && owner->node == membership->options().node_id;
  }
  bool admits(unsigned shard) const override {
    auto* mover = mover_.load();
    return mover == nullptr || mover->admits(shard);
  }
  ShardLocation locate(unsigned shard) const {
    auto* membership = membership_.load();
    if (membership == nullptr) return {ShardLocation::Kind::nowhere, {}, {}, {}};
    // Owned here but being handed over: no owner for routing (requests wait for the new one).
    if (membership->epoch(shard)) {
      return {admits(shard) ? ShardLocation::Kind::here : ShardLocation::Kind::nowhere, {}, {}, {}};
    }
    auto owner = membership->owner(shard);
    if (!owner || owner->node == membership->options().node_id) return {ShardLocation::Kind::nowhere, {}, {}, {}};
    // advertise: http://HOST:PORT (checked when the node joined)
    auto endpoints = cluster::parse_endpoints(owner->advertise);
    if (!endpoints.ok()) return {ShardLocation::Kind::nowhere, {}, {}, {}};
    const auto& to = endpoints.value().front();
    return {ShardLocation::Kind::there, owner->node, to.host, to.port};
  }

 private:
  std::atomic<cluster::Membership*> membership_{nullptr};
  std::atomic<ShardMover*> mover_{nullptr};
  mutable std::shared_mutex replication_;
};

}  // namespace

int run_app(int argc, char** argv, const AppDefaults& defaults,
            const std::function<Registry()>& make_classes,
            const std::function<void(GatewayOptions&)>& routes) {
  if (argc == 3 && std::strcmp(argv[1], probe_argument) == 0) {
    // A child of this program checking a plugin before the program loads it (plugins.hpp).
    // None of the parent's sockets stay open in it (Asio's are not close-on-exec). It leaves
    // without exit handlers: the library's own static destructors, and the sanitizers' leak
    // check of a process that only loaded one library, are not the probe's business.
    ::close_range(5, ~0U, 0);
    int status = probe_plugin(argv[2]);
    std::fflush(stderr);
    std::_Exit(status);
  }
  CLI::App app{defaults.description};
  std::string host = "127.0.0.1";
  std::uint16_t port = defaults.port;
  std::string data_dir = defaults.data_dir;
  std::string public_dir = defaults.public_dir;
  std::string durability = "full";
  std::size_t threads = 8;
  std::size_t io_threads = 1;
  std::size_t storage_threads = limits::default_storage_threads;
  auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  auto to_ms = [](double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); };
  double idle_timeout_s = seconds(limits::default_idle_timeout);
  std::size_t max_live = limits::default_max_live_instances;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string admin_host = "127.0.0.1";
  std::uint16_t admin_port = 0;
  std::string admin_token_file;
  std::size_t max_connections = 0;
  std::size_t max_queued = limits::default_max_queued_events;
  double request_timeout_s = seconds(limits::default_request_timeout);
  double header_timeout_s = seconds(limits::default_header_timeout);
  double keep_alive_s = seconds(limits::default_keep_alive_timeout);
  double event_budget_s = seconds(limits::default_event_budget);
  std::size_t recent_events = limits::default_recent_events;
  double history_retention_s = 0;
  std::int64_t history_max_bytes = limits::default_history_max_bytes;
  std::string csp = "default";
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0 picks a free one)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where actor databases live")->capture_default_str();
  app.add_option("--public-dir", public_dir, "static files to serve (empty: none)")->capture_default_str();
  app.add_option("--durability", durability, "full: fsync every commit; normal: WAL NORMAL")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "actor threads (they run actor code; commits are made durable on the storage threads)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--storage-threads", storage_threads,
                 "threads that fsync commits (sized by fsyncs in flight, not by cores)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--io-threads", io_threads, "HTTP/WebSocket I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cli::add_duration(app, "--idle-timeout", idle_timeout_s,
                    "time without an event before an instance leaves memory (0: never)")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--max-live-instances", max_live, "instances in memory at most")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--max-connections", max_connections,
                 "open connections at most; more are answered 503 (0: the descriptor limit less "
                 "a reserve for the databases, at most 10000)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{10'000'000}))
      ->capture_default_str();
  app.add_option("--max-queued-events", max_queued,
                 "requests waiting for one actor at most; more are answered 503 at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
      ->capture_default_str();
  cli::add_duration(app, "--request-timeout", request_timeout_s,
                 "seconds an actor has to answer a request before the client gets 504")
      ->check(CLI::Range(0.01, 86400.0))
      ->capture_default_str();
  cli::add_duration(app, "--header-timeout", header_timeout_s,
                 "seconds a request's headers have to arrive after its first byte")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cli::add_duration(app, "--keep-alive-timeout", keep_alive_s,
                 "seconds an idle HTTP connection stays open between requests")
      ->check(CLI::Range(0.01, 86400.0))
      ->capture_default_str();
  app.add_option("--content-security-policy", csp,
                 "the public listener's Content-Security-Policy: default (the page's own files and "
                 "inline scripts and styles), strict (no inline code), none (no header), or a policy")
      ->capture_default_str();
  cli::add_duration(app, "--event-budget", event_budget_s,
                    "longest one actor event may run its SQL before it is interrupted and fails "
                    "with 500 (0: no budget)")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--recent-events", recent_events,
                 "events each actor keeps for the admin API and the inspector (its recent events, "
                 "and the counts behind the busiest, slowest and failing actors; 0: none)")
      ->check(CLI::Range(std::size_t{0}, limits::max_recent_events))
      ->capture_default_str();
  cli::add_duration(app, "--history-retention", history_retention_s,
                    "how long each actor's committed changes are kept, so that it can be restored to any "
                    "moment within it (cairnctl restore BINDING NAME --at TIME; 0: no history)")
      ->check(CLI::Range(0.0, 10.0 * 365 * 86400))
      ->capture_default_str();
  app.add_option("--history-max-bytes", history_max_bytes,
                 "the most bytes of changes kept per actor (the oldest go first)")
      ->check(CLI::Range(std::int64_t{4096}, limits::max_history_max_bytes))
      ->capture_default_str();
  // The public edge (README "Securing the public listener").
  std::vector<std::string> trusted_proxies;
  std::string forwarded_header = "X-Forwarded-For";
  std::vector<std::string> cors_origins;
  bool cors_credentials = false;
  bool access_log = true;
  std::string jwt_secret_file;
  std::string jwt_public_key_file;
  std::string jwt_issuer;
  std::string jwt_audience;
  double jwt_skew_s = 30;
  std::vector<std::string> auth_required;
  std::vector<std::string> rate_limits;
  std::size_t rate_limit_clients = 100'000;
  std::vector<CLI::Option*> lists;  // options that take many values
  lists.push_back(app.add_option("--trusted-proxy", trusted_proxies,
                                 "a proxy's address or network (CIDR; repeat the flag for more): its Forwarded or "
                                 "X-Forwarded-For names the client, its X-Request-Id is kept; from others they are "
                                 "ignored"));
  app.add_option("--forwarded-header", forwarded_header,
                 "the header the trusted proxies write the client into (only it is read)")
      ->check(CLI::IsMember({"X-Forwarded-For", "Forwarded"}))
      ->capture_default_str();
  lists.push_back(app.add_option("--cors-origin", cors_origins,
                                 "an origin (https://app.example.com; repeat for more) whose pages may call this "
                                 "server from a browser, or * for any; set, WebSocket upgrades from other origins "
                                 "are refused (403)"));
  app.add_flag("--cors-credentials", cors_credentials,
               "browsers may send cookies and credentials with cross-origin requests (not with --cors-origin *)")
      ->default_str("false");
  app.add_flag("--access-log", access_log,
               "one info line per request (address, method, path, status, bytes, ms, request id); "
               "--access-log=false: none")
      ->default_str("true");
  app.add_option("--auth-hs256-secret-file", jwt_secret_file,
                 "verify bearer tokens (JWT) signed HS256 with the secret in this file (32+ bytes; default: "
                 "systemd's credential auth-hs256-secret)")
      ->check(CLI::ExistingFile);
  app.add_option("--auth-rs256-public-key", jwt_public_key_file,
                 "verify bearer tokens (JWT) signed RS256 with this PEM public key or certificate")
      ->check(CLI::ExistingFile);
  app.add_option("--auth-issuer", jwt_issuer, "a token's \"iss\" must be this (empty: not checked)");
  app.add_option("--auth-audience", jwt_audience, "a token's \"aud\" must name this (empty: not checked)");
  cli::add_duration(app, "--auth-clock-skew", jwt_skew_s, "leeway for a token's \"exp\" and \"nbf\"")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  lists.push_back(app.add_option("--auth-required", auth_required,
                                 "requests that need a valid bearer token, \"[METHODS] TARGET\": \"POST /book\", a "
                                 "binding (\"FLIGHT\"), \"/objects/COUNTER/*\" or \"*\"; repeat for more"));
  lists.push_back(app.add_option("--rate-limit", rate_limits,
                                 "a rate limit per client, \"[METHODS] TARGET RATE/UNIT [BURST]\": \"POST /book 5/s 10\" "
                                 "(429 with Retry-After past it); repeat for more"));
  std::vector<std::string> plugin_libraries;
  lists.push_back(app.add_option("--plugin", plugin_libraries,
                                 "a shared library of actor classes to load (cairn/plugin.hpp; README \"Deploying a "
                                 "class without building a server\"); repeat for more"));
  app.add_option("--rate-limit-clients", rate_limit_clients,
                 "clients each rate limit remembers at most (the least recently seen are forgotten)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}))
      ->capture_default_str();
  std::string tls_cert;
  std::string tls_key;
  auto* tls_cert_option =
      app.add_option("--tls-cert", tls_cert,
                     "serve HTTPS and WSS (public and admin listeners) with this PEM certificate chain; "
                     "SIGHUP reads it again")
          ->check(CLI::ExistingFile);
  auto* tls_key_option =
      app.add_option("--tls-key", tls_key, "the PEM private key of --tls-cert")->check(CLI::ExistingFile);
  tls_cert_option->needs(tls_key_option);
  tls_key_option->needs(tls_cert_option);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text, or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  auto* admin_port_option =
      app.add_option("--admin-port", admin_port,
                     "serve the admin API (metrics, actors, backup) on this port (0 picks a free one); "
                     "off unless given")
          ->check(CLI::Range(0, 65535));
  app.add_option("--admin-host", admin_host, "address of the admin API (keep it private)")
      ->capture_default_str()
      ->needs(admin_port_option);
  // Under systemd, LoadCredential=admin-token:... (and cluster-token) are the defaults.
  const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
  auto credential = [credentials](const char* name) {
    if (credentials == nullptr || *credentials == '\0') return std::string();
    auto path = std::filesystem::path(credentials) / name;
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec) ? path.string() : std::string();
  };
  admin_token_file = credential("admin-token");
  jwt_secret_file = credential("auth-hs256-secret");
  app.add_option("--admin-token-file", admin_token_file,
                 "file whose first line is the admin API's bearer token (16+ characters; default: systemd's "
                 "credential admin-token)")
      ->check(CLI::ExistingFile);
  std::string cluster_endpoints;
  std::string node_id;
  std::string advertise;
  std::string cluster_host = "127.0.0.1";
  std::uint16_t cluster_port = 0;
  std::string cluster_token_file = credential("cluster-token");
  auto* cluster_option = app.add_option("--cluster", cluster_endpoints,
                                        "run as a node of a cluster: its etcd endpoints, http://HOST:PORT[,...] "
                                        "(README \"Running a cluster\")");
  app.add_option("--node-id", node_id, "this node's name in the cluster ([A-Za-z0-9_.-], unique)")
      ->needs(cluster_option);
  app.add_option("--cluster-host", cluster_host, "address of the listener other nodes forward requests to")
      ->capture_default_str()
      ->needs(cluster_option);
  app.add_option("--cluster-port", cluster_port, "port of that listener (0 picks a free one)")
      ->capture_default_str()
      ->needs(cluster_option);
  app.add_option("--advertise", advertise,
                 "where other nodes reach that listener, http://HOST:PORT (default: --cluster-host and its port)")
      ->needs(cluster_option);
  app.add_option("--cluster-token-file", cluster_token_file,
                 "file whose first line is the secret every node of the cluster shares (16+ characters)")
      ->check(CLI::ExistingFile)
      ->needs(cluster_option);
  bool replicate = false;
  app.add_flag("--replicate", replicate,
               "keep a copy of every shard this node owns on a follower the cluster chooses (every node of the "
               "cluster must say it): a write is acknowledged once the follower holds it too, and if this node "
               "dies, or loses its disk, the follower takes its shards over")
      ->needs(cluster_option);
  int min_replicas = 1;
  app.add_option("--min-replicas", min_replicas,
                 "1: while a shard's follower is lost or being seeded, its writes are acknowledged on the owner's "
                 "disk alone (etcd records that, so the stale follower never takes over); 2: they are refused "
                 "with a retryable 503 until the follower is in sync again")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  double replication_timeout_s = 2;
  cli::add_duration(app, "--replication-timeout", replication_timeout_s,
                    "seconds a sync waits for the follower before the owner drops it from the shard's in-sync set "
                    "(see --min-replicas)")
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  double drain_period_s = 0;
  cli::add_duration(app, "--drain-period", drain_period_s,
                    "after SIGTERM, seconds /readyz answers 503 while everything is still served (a load balancer "
                    "stops sending traffic), before the server stops")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  double handoff_timeout_s = 60;
  cli::add_duration(app, "--handoff-timeout", handoff_timeout_s,
                    "on SIGTERM, seconds to hand this node's shards to the others before it stops anyway "
                    "(those left wait for it, as after a crash)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str()
      ->needs(cluster_option);
  for (const auto& flag : defaults.flags) {
    std::visit(
        [&](auto* value) {
          using T = std::remove_pointer_t<decltype(value)>;
          if (value == nullptr) throw std::invalid_argument("run_app: flag " + flag.name + " has no variable");
          if constexpr (std::is_same_v<T, bool>) {
            app.add_flag(flag.name, *value, flag.help)->default_str(*value ? "true" : "false");
          } else if constexpr (std::is_same_v<T, std::string>) {
            auto* option = app.add_option(flag.name, *value, flag.help)->capture_default_str();
            if (!flag.choices.empty()) option->check(CLI::IsMember(flag.choices));
          } else {
            auto* option = app.add_option(flag.name, *value, flag.help)->capture_default_str();
            if (flag.min < flag.max) option->check(CLI::Range(flag.min, flag.max));
          }
        },
        flag.value);
  }
  // A flag given twice takes its last value, so a script's defaults can be overridden.
  for (auto* option : app.get_options()) option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  for (auto* option : lists) option->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "cairn-server";
  cli::add_version(app, program);
  // The config file's [bindings.NAME] tables (routes, options) are not flags: taken out of it
  // before CLI11 reads the rest (config_tables.hpp).
  auto tables = std::make_shared<SplitToml>();
  auto configured = cli::configure(app, [tables](const std::string& text) {
    *tables = split_toml(text, {"bindings"});
    return tables->rest;
  });
  if (int status = cli::parse(app, argc, argv, program); status >= 0) return status;
  if (configured.print_config->count() > 0) {
    std::fputs(cli::print_config(app).c_str(), stdout);
    if (!tables->tables_toml.empty()) std::fputs(("\n" + tables->tables_toml).c_str(), stdout);
    return 0;
  }
  // Logs go to stderr; stdout carries only the line with the address.
  spdlog::set_default_logger(spdlog::stderr_color_mt("cairn"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (log_format == "json") {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    auto text = std::make_unique<spdlog::pattern_formatter>();
    text->add_flag<LogContextFlag>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v%*");
    spdlog::set_formatter(std::move(text));
  }
  // The program's own classes, then the plugins' (whose problems end the program here, before
  // anything is opened or served).
  Registry classes;
  try {
    classes = make_classes();
  } catch (const std::exception& e) {
    spdlog::error("the program's classes: {}", e.what());
    return 1;
  }
  std::shared_ptr<PluginSet> plugins;
  std::map<std::string, BindingRouting> configured_routes;
  std::map<std::string, std::chrono::milliseconds, std::less<>> idle_timeouts;
  try {
    auto bindings = tables->tables_json.empty() ? nlohmann::json::object()
                                                : nlohmann::json::parse(tables->tables_json).value("bindings", nlohmann::json());
    plugins = std::make_shared<PluginSet>(plugin_libraries, bindings, classes);
    configured_routes = configured_routing(bindings, classes, plugins->loaded());
    idle_timeouts = configured_idle_timeouts(bindings);
    // The routes as they will be, checked now (a path routed twice), before anything starts.
    GatewayOptions routing;
    routes(routing);
    apply_routing(routing, plugins->loaded(), configured_routes);
  } catch (const PluginError& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 2;
  }
  EdgeOptions edge;
  {
    auto read_file = [](const std::string& file, std::string& problem) {
      std::ifstream in(file, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) problem = "cannot read " + file;
      return text;
    };
    std::string problem;
    edge.trusted_proxies = trusted_proxies;
    edge.forwarded_header = forwarded_header;
    edge.cors_origins = cors_origins;
    edge.cors_credentials = cors_credentials;
    edge.access_log = access_log;
    if (!jwt_secret_file.empty()) {
      edge.jwt.hs256_secret = read_file(jwt_secret_file, problem);
      // A secret file ends in a newline more often than not: it is no part of the key.
      while (!edge.jwt.hs256_secret.empty() &&
             (edge.jwt.hs256_secret.back() == '\n' || edge.jwt.hs256_secret.back() == '\r')) {
        edge.jwt.hs256_secret.pop_back();
      }
    }
    if (!jwt_public_key_file.empty()) edge.jwt.rs256_public_key_pem = read_file(jwt_public_key_file, problem);
    edge.jwt.issuer = jwt_issuer;
    edge.jwt.audience = jwt_audience;
    edge.jwt.clock_skew = std::chrono::seconds(static_cast<long long>(jwt_skew_s));
    for (const auto& text : auth_required) {
      auto rule = parse_request_rule(text);
      if (!rule) problem = "--auth-required: " + rule.error().message;
      else edge.jwt.required.push_back(std::move(*rule));
    }
    for (const auto& text : rate_limits) {
      auto limit = parse_rate_limit(text);
      if (!limit) problem = "--rate-limit: " + limit.error().message;
      else edge.rate_limits.push_back(std::move(*limit));
    }
    edge.rate_limit_clients = rate_limit_clients;
    if (problem.empty()) problem = check_edge_options(edge);
    if (!problem.empty()) {
      std::fprintf(stderr, "%s: %s\n", program.c_str(), problem.c_str());
      return 2;
    }
  }
  if (!tls_cert.empty()) {
    if (auto problem = check_tls_files(tls_cert, tls_key); !problem.empty()) {
      std::fprintf(stderr, "%s\n", problem.c_str());
      return 2;
    }
  }
  // Sockets systemd passed (socket activation) replace --host/--port, --admin-port and
  // --cluster-port; an admin socket turns the admin API on.
  auto passed = systemd::listen_fds();
  if (!passed.problem.empty()) {
    std::fprintf(stderr, "%s\n", passed.problem.c_str());
    return 2;
  }
  if (passed.cluster_fd >= 0 && cluster_option->count() == 0) {
    std::fprintf(stderr, "systemd passed a cluster socket, but --cluster is not set\n");
    return 2;
  }
  if (passed.cluster_fd >= 0) {
    // Other nodes reach this node where systemd's socket listens (not --cluster-host).
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    boost::system::error_code bec;
    boost::asio::ip::address address;
    if (::getsockname(passed.cluster_fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      if (local.ss_family == AF_INET) {
        address = boost::asio::ip::address_v4(ntohl(reinterpret_cast<sockaddr_in*>(&local)->sin_addr.s_addr));
      } else if (local.ss_family == AF_INET6) {
        boost::asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr.s6_addr, bytes.size());
        address = boost::asio::ip::address_v6(bytes);
      }
    }
    if (advertise.empty() && address.is_unspecified()) {
      std::fprintf(stderr,
                   "the cluster socket systemd passed listens on %s, which other nodes cannot reach: give "
                   "--advertise http://IP:PORT\n",
                   address.to_string().c_str());
      return 2;
    }
    cluster_host = address.to_string();
  }
  std::string admin_token;
  if (admin_port_option->count() > 0 || passed.admin_fd >= 0) {
    std::string problem;
    if (admin_token_file.empty()) {
      std::fprintf(stderr, "the admin API (--admin-port) needs --admin-token-file, or systemd's credential admin-token\n");
      return 2;
    }
    admin_token = read_token(admin_token_file, problem);
    if (!problem.empty()) {
      spdlog::critical("{}", problem);
      return 2;
    }
  }
  std::string cluster_token;
  std::vector<cluster::Endpoint> etcd;
  if (cluster_option->count() > 0) {
    std::string problem;
    auto parsed = cluster::parse_endpoints(cluster_endpoints);
    if (!parsed.ok()) problem = "--cluster: " + parsed.error().message;
    else etcd = parsed.value();
    if (problem.empty() && node_id.empty()) problem = "--cluster needs --node-id";
    if (problem.empty() && cluster_token_file.empty()) {
      problem = "--cluster needs --cluster-token-file, or systemd's credential cluster-token";
    }
    if (problem.empty()) {
      cluster_token = read_token(cluster_token_file, problem);
      if (!problem.empty()) problem = "--cluster-token-file: " + problem;
    }
    // Other nodes connect to the advertised address as given: an IP address they can reach.
    std::string advertised = advertise.empty() ? "http://" + cluster_host + ":1" : advertise;
    if (problem.empty()) {
      auto where = cluster::parse_endpoints(advertised);
      boost::system::error_code bec;
      auto address = where.ok() ? boost::asio::ip::make_address(where.value()[0].host, bec) : boost::asio::ip::address{};
      if (!where.ok() || bec || address.is_unspecified() || where.value().size() != 1) {
        problem = advertise.empty()
                      ? "--cluster-host " + cluster_host + " is not an address other nodes can reach: give --advertise http://IP:PORT"
                      : "--advertise " + advertise + ": must be http://IP:PORT with an address other nodes can reach";
      }
    }
    if (!problem.empty()) {
      std::fprintf(stderr, "%s\n", problem.c_str());
      return 2;
    }
  }
  block_stop_signals();
  // Every live instance holds 2 descriptors and every socket 1.
  std::uint64_t descriptors = raise_descriptor_limit();
  spdlog::info("descriptor limit {}", descriptors);
  if (max_connections == 0) {
    // Keep descriptors for the databases (2 per live instance), one for each storage
    // thread's WAL sync, and the runtime's own files.
    std::uint64_t reserve = 2 * max_live + storage_threads + limits::reserved_descriptors;
    max_connections = static_cast<std::size_t>(std::clamp<std::uint64_t>(
        descriptors > reserve ? descriptors - reserve : 0, 16, limits::default_max_connections));
  }
  try {
    RuntimeOptions options;
    options.data_dir = data_dir;
    options.durability = durability == "full" ? Durability::full : Durability::normal;
    options.threads = threads;
    options.storage_threads = storage_threads;
    options.idle_timeout = to_ms(idle_timeout_s);
    options.idle_timeout_by_binding = idle_timeouts;
    options.max_live_instances = max_live;
    options.max_queued_events = max_queued;
    options.event_budget = to_ms(event_budget_s);
    options.recent_events = recent_events;
    options.history_retention = std::chrono::seconds(static_cast<std::int64_t>(history_retention_s));
    options.history_max_bytes = history_max_bytes;
    auto link = std::make_shared<ClusterLink>();
    std::shared_ptr<ClusterCalls> calls;
    std::shared_ptr<HttpReplicator> replicator;
    // What this node did as a follower (POST /_cairn/replicate), for /metrics.
    struct FollowerCounts {
      std::atomic<std::uint64_t> applied{0}, stale_epoch{0}, failed{0}, malformed{0};
    };
    auto followed = std::make_shared<FollowerCounts>();
    if (!etcd.empty()) {
      options.ownership = link;
      calls = std::make_shared<ClusterCalls>([link](unsigned shard) { return link->locate(shard); }, cluster_token,
                                             to_ms(request_timeout_s));
      options.remote_calls = calls;
      if (replicate) {
        HttpReplicatorOptions r;
        r.data_dir = data_dir;
        r.follower = [link](unsigned shard) { return link->follower(shard); };
        r.epoch = [link](unsigned shard) { return link->epoch(shard); };
        r.record = [link](unsigned shard, const std::string& node, bool counted) {
          return link->record(shard, node, counted);
        };
        r.token = cluster_token;
        r.timeout = to_ms(replication_timeout_s);
        r.min_replicas = min_replicas;
        // Tests only: seeds in small pieces, so that a test's shards of a few pages take several.
        if (const char* piece = std::getenv("CAIRN_TEST_SEED_PIECE_BYTES"); piece != nullptr && std::atoi(piece) > 0) {
          r.seed_piece_bytes = static_cast<std::size_t>(std::atoi(piece));
          spdlog::warn("CAIRN_TEST_SEED_PIECE_BYTES={}: seeds go in pieces of {} bytes (for tests)", piece,
                       r.seed_piece_bytes);
        }
        replicator = std::make_shared<HttpReplicator>(std::move(r));
        options.replicator = replicator;
      }
    }
    // Stopped (Membership::stop) with the cluster below, before the runtime goes, and destroyed
    // only after it: a runtime thread that read the link before it was detached may still
    // ask the membership for an epoch while the runtime stops.
    std::unique_ptr<cluster::Membership> membership;
    Runtime runtime(std::move(classes), options);
    // Stopped before the runtime goes (ClusterCalls::stop).
    struct StopCalls {
      std::shared_ptr<ClusterCalls>& calls;
      ~StopCalls() {
        if (calls) calls->stop();
      }
    } stop_calls{calls};
    GatewayOptions web;
    web.host = host;
    web.port = port;
    web.listen_fd = passed.public_fd;
    web.tls_cert_file = tls_cert;
    web.tls_key_file = tls_key;
    web.public_dir = public_dir;
    web.content_security_policy = csp == "default"  ? std::string(default_content_security_policy)
                                  : csp == "strict" ? std::string(strict_content_security_policy)
                                  : csp == "none"   ? std::string()
                                                    : csp;
    web.io_threads = io_threads;
    web.max_connections = max_connections;
    web.request_timeout = to_ms(request_timeout_s);
    web.header_timeout = to_ms(header_timeout_s);
    web.keep_alive_timeout = to_ms(keep_alive_s);
    web.edge = edge;
    web.errors = std::make_shared<ErrorLog>();
    routes(web);
    try {
      apply_routing(web, plugins->loaded(), configured_routes);
    } catch (const PluginError& e) {
      std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
      return 2;
    }
    std::string banner = "(data in " + data_dir + ", durability " + durability + ")";
    ServeExtras extras;
    extras.drain_period = to_ms(drain_period_s);
    if (!plugin_libraries.empty()) {
      // SIGHUP and POST /admin/reload (cairnctl reload): new versions of the libraries.
      extras.reload = [plugins, &runtime] { (void)plugins->reload(runtime); };
    }
    // Left after every gateway thread has stopped (serve() returns only then) and before the
    // runtime is destroyed: nothing can reach the Membership after it is stopped, nor its
    // watch reach the runtime.
    std::unique_ptr<ShardMover> mover;
    std::shared_ptr<std::unique_ptr<ClusterAdmin>> cluster_admin;  // uses the membership: reset with it
    std::unique_ptr<Periodic> catch_up_pass;
    std::unique_ptr<Periodic> sweep_pass;  // stale copies (replicated nodes)
    // The sweep itself (set once the membership exists), and how many copies it put aside.
    auto sweep = std::make_shared<std::function<void(bool all)>>();
    auto stale_total = std::make_shared<std::atomic<std::uint64_t>>(0);
    struct Leave {
      std::unique_ptr<Periodic>& sweep;
      std::unique_ptr<Periodic>& pass;
      ClusterLink& link;
      std::unique_ptr<cluster::Membership>& membership;
      std::unique_ptr<ShardMover>& mover;
      std::shared_ptr<std::unique_ptr<ClusterAdmin>>& admin;
      ~Leave() {
        sweep.reset();
        pass.reset();
        link.attach(nullptr, nullptr);
        // Stopped first: its watch calls into the mover (owner changes) until then.
        if (membership) membership->stop();  // its lease is revoked; shards it still owns wait for it
        mover.reset();
        if (admin) admin->reset();
        if (membership) spdlog::info("cluster: left");
      }
    } leave{sweep_pass, catch_up_pass, *link, membership, mover, cluster_admin};
    if (!etcd.empty()) {
      auto routing = std::make_shared<ClusterRouting>();
      routing->locate = [link](unsigned shard) { return link->locate(shard); };
      routing->token = cluster_token;
      web.cluster = routing;
      web.not_ready = [link] { return link->not_ready(); };
      GatewayOptions internal = web;  // the same routes and limits, for forwarded requests
      internal.host = cluster_host;
      internal.port = cluster_port;
      internal.listen_fd = passed.cluster_fd;
      internal.public_dir.clear();
      // Node to node: plain HTTP on the cluster's private network, authenticated by the
      // cluster token (README "Running a cluster").
      internal.tls_cert_file.clear();
      internal.tls_key_file.clear();
      auto internal_routing = std::make_shared<ClusterRouting>(*routing);
      internal_routing->internal = true;
      // Set before the listener starts, used once the mover exists (nobody can hand this
      // node a shard before it joined).
      auto movers = std::make_shared<std::atomic<ShardMover*>>(nullptr);
      cluster_admin = std::make_shared<std::unique_ptr<ClusterAdmin>>();
      internal_routing->handoff = [movers](const Request& request) {
        auto* m = movers->load();
        if (m == nullptr) return Response::error(Code::unavailable, "this node has not joined the cluster yet");
        return m->receive(request);
      };
      // The copies of the shards this node follows (cairn/replication.hpp), beside its own.
      auto mirror = std::make_shared<ShardMirror>(std::filesystem::path(data_dir) / "_replicas");
      auto promoter = std::make_shared<CopyPromoter>(runtime, mirror, data_dir);
      internal_routing->replicate = [mirror, followed, promoter, link](const Request& request) {
        std::string error;
        auto batch = decode(request.body, error);
        if (!batch) {
          ++followed->malformed;
          return Response::error(Code::invalid_argument, "a malformed replication batch: " + error);
        }
        auto outcome = mirror->apply(*batch, error);
        if (outcome == ShardMirror::Outcome::stale_epoch &&
            promoter->put_back_for_batch(batch->shard, batch->epoch, link->owned_here(batch->shard))) {
          outcome = mirror->apply(*batch, error);  // a seed is taken; another batch asks for one
        }
        switch (outcome) {
          case ShardMirror::Outcome::applied:
            ++followed->applied;
            return Response::json(200, {{"applied", batch->ops.size()}, {"epoch", mirror->epoch(batch->shard)}});
          case ShardMirror::Outcome::stale_epoch:
            ++followed->stale_epoch;
            return Response::error(Code::conflict, error);
          case ShardMirror::Outcome::failed:
            ++followed->failed;
            break;
        }
        spdlog::error("replication: shard {}: {}", batch->shard, error);
        return Response::error(Code::unavailable, "the follower could not apply the batch: " + error);
      };
      extras.leaving = [&mover, &sweep_pass, limit = to_ms(handoff_timeout_s)] {
        sweep_pass.reset();  // nothing is put aside while the node stops
        if (mover) mover->leave(limit);
      };
      internal.cluster = internal_routing;
      extras.internal = std::move(internal);
      extras.internal_started = [&, link, movers, mirror, promoter](std::uint16_t bound) {
        cluster::MembershipOptions m;
        m.etcd = etcd;
        m.node_id = node_id;
        m.advertise = advertise.empty() ? "http://" + cluster_host + ":" + std::to_string(bound) : advertise;
        m.data_id = data_identity(data_dir);
        m.replicate = replicate;
        if (const char* unsafe = std::getenv("CAIRN_TEST_UNSAFE_NO_SELF_FENCE"); unsafe != nullptr && *unsafe == '1') {
          m.self_fence = false;
          spdlog::critical("CAIRN_TEST_UNSAFE_NO_SELF_FENCE=1: this node does not fence itself when it loses etcd "
                           "(for tests of the followers' fence only; never in production)");
        }
        membership = std::make_unique<cluster::Membership>(m);
        if (replicate) {
          // Back after a crash or a partition: copies of shards that followers took over
          // meanwhile are stale (the shard is assigned to another node, and no move of it is
          // bound here, which a hand-off to this node under way would be). They go, with their
          // index rows; this node is seeded again as a follower. At start, before any hand-off
          // can reach this node (the mover does not exist yet); then every few seconds, over
          // the copies of shards this node does not own, while no hand-off to it commits;
          // never a copy a promotion marked, nor one a takeover is making this node's.
          *sweep = [&membership, promoter, data_dir, node_id, stale_total, data_id = data_identity(data_dir)](bool all) {
            // The periodic pass picks suspects from the local view, which a fenced node cannot
            // trust; the start-up pass asks etcd about every copy.
            if (!all && membership->fenced()) return;
            std::size_t discarded = 0, asked = 0;
            std::error_code listed;
            for (const auto& entry :
                 std::filesystem::directory_iterator(std::filesystem::path(data_dir) / "_shards", listed)) {
              auto name = entry.path().filename().string();
              if (!entry.is_directory() || name.size() != 4 || name.find_first_not_of("0123456789") != std::string::npos) {
                continue;
              }
              auto shard = static_cast<unsigned>(std::stoul(name));
              if (shard >= ActorId::shard_count) continue;
              if (!all && membership->epoch(shard)) continue;  // owned here: not a suspect
              // A periodic pass asks etcd about a few copies at most (it holds the hand-off
              // and promotion locks meanwhile); the next pass goes on.
              if (!all && ++asked > 8) break;
              bool unreadable = false;
              // An etcd read that failed ends the pass: the copy stays (false).
              auto read = [&](const Result<std::string>& got) {
                if (got.ok()) return true;
                spdlog::warn("cluster: cannot look for stale shard copies: {}", got.error().message);
                unreadable = true;
                return false;
              };
              bool gone = promoter->discard_stale(shard, [&] {
                // The move first, then the assignment: a hand-over to this node that lands
                // between the two reads (one transaction assigns the shard here and deletes
                // the move) is then seen in the second.
                auto moving = membership->move_target(shard);
                if (!read(moving) || moving.value() == node_id) return false;
                auto assigned = membership->assignment(shard);
                if (!read(assigned) || assigned.value().empty() || assigned.value() == node_id) return false;
                // This directory under its old node id: the shards are its data, waiting.
                auto disk = membership->disk_of(assigned.value());
                return read(disk) && disk.value() != data_id;
              });
              if (gone) ++discarded;
              if (unreadable) break;
            }
            if (discarded > 0) {
              stale_total->fetch_add(discarded);
              spdlog::info("cluster: {} shard copies put aside: their shards were taken over while this node was away",
                           discarded);
            }
          };
          (*sweep)(true);
          // Failover (cairn/cluster/membership.hpp): the follower's copy becomes this node's
          // shard, its index rows are rebuilt from the files, and only then is it claimed.
          membership->on_takeover(cluster::Takeover{
              [promoter](unsigned shard, std::int64_t record) { return promoter->take_over(shard, record); },
              [promoter](unsigned shard, std::optional<std::int64_t> epoch) {
                promoter->finish_takeover(shard, epoch);
              }});
          // Followers nothing writes to are caught up too (HttpReplicator::catch_up).
          catch_up_pass = std::make_unique<Periodic>(std::chrono::milliseconds(500), [&membership, replicator] {
            for (unsigned shard : membership->owned()) replicator->catch_up(shard);
          });
          sweep_pass = std::make_unique<Periodic>(std::chrono::seconds(5), [movers, sweep] {
            if (auto* mine = movers->load()) mine->exclusive([&] { (*sweep)(false); });
          });
        }
        membership->on_owner_change([&runtime, &membership, movers, promoter, replicate](unsigned shard) {
          runtime.evict_shard(shard);
          if (auto* mine = movers->load()) mine->owner_changed(shard);
          // A copy handed in by a graceful leave, now claimed here: its fence is recorded.
          if (auto epoch = membership->epoch(shard); epoch && replicate) promoter->claimed(shard, *epoch);
        });
        ShardMover::Options moving;
        moving.token = cluster_token;
        if (replicate) {
          moving.settle = [replicator](unsigned shard) { return replicator->settle(shard); };
          moving.promote = [promoter](const std::vector<std::pair<unsigned, ReplicaPosition>>& shards,
                                      const std::string& move) { return promoter->hand_in(shards, move); };
          moving.demote = [promoter](unsigned shard, const std::string& move) { promoter->hand_back(shard, move); };
        }
        mover = std::make_unique<ShardMover>(runtime, *membership, data_dir, std::move(moving));
        movers->store(mover.get());
        *cluster_admin = std::make_unique<ClusterAdmin>(*membership, [link](unsigned shard) { return link->locate(shard); },
                                                        cluster_token, to_ms(request_timeout_s));
        link->attach(membership.get(), mover.get());
        banner += ", node " + node_id + " of the cluster at " + cluster_endpoints;
      };
      extras.metrics = [&membership, &mover, calls, replicator, followed, stale_total](metrics::TextWriter& out) {
        out.family("cairn_cluster_stale_copies_total", "counter",
                   "Copies of shards this node held that were put aside because followers took the shards over "
                   "while it was away (after a crash or a partition)");
        out.sample("cairn_cluster_stale_copies_total", {}, static_cast<double>(stale_total->load()));
        out.family("cairn_replication_follower_batches_total", "counter",
                   "Replication batches this node received as a follower, by outcome: applied, stale_epoch "
                   "(refused: an owner of an older epoch), failed (out of order, or an I/O error), malformed");
        out.sample("cairn_replication_follower_batches_total", {{"outcome", "applied"}},
                   static_cast<double>(followed->applied.load()));
        out.sample("cairn_replication_follower_batches_total", {{"outcome", "stale_epoch"}},
                   static_cast<double>(followed->stale_epoch.load()));
        out.sample("cairn_replication_follower_batches_total", {{"outcome", "failed"}},
                   static_cast<double>(followed->failed.load()));
        out.sample("cairn_replication_follower_batches_total", {{"outcome", "malformed"}},
                   static_cast<double>(followed->malformed.load()));
        if (replicator) {
          auto r = replicator->stats();
          out.family("cairn_replication_batches_total", "counter",
                     "Replication batches this node sent as an owner, by outcome: applied by the follower, "
                     "refused_stale (the follower has seen a newer epoch), failed (no answer in time, or refused)");
          out.sample("cairn_replication_batches_total", {{"outcome", "applied"}}, static_cast<double>(r.batches));
          out.sample("cairn_replication_batches_total", {{"outcome", "refused_stale"}},
                     static_cast<double>(r.refused_stale));
          out.sample("cairn_replication_batches_total", {{"outcome", "failed"}}, static_cast<double>(r.failed));
          out.family("cairn_replication_seeds_total", "counter",
                     "Of the batches applied, seeds (a shard's files sent whole to its follower)");
          out.sample("cairn_replication_seeds_total", {}, static_cast<double>(r.seeds));
          out.family("cairn_replication_seed_pieces_total", "counter",
                     "The batches those seeds were sent in (a shard's files are sent in pieces of 16 MiB)");
          out.sample("cairn_replication_seed_pieces_total", {}, static_cast<double>(r.seed_pieces));
          out.family("cairn_replication_sent_bytes_total", "counter", "Bytes of the batches applied by followers");
          out.sample("cairn_replication_sent_bytes_total", {}, static_cast<double>(r.bytes));
          out.family("cairn_replication_followers_total", "counter",
                     "Followers this owner dropped from a shard's in-sync set (they failed a batch), and counted in "
                     "sync again (seeded and caught up)");
          out.sample("cairn_replication_followers_total", {{"event", "dropped"}}, static_cast<double>(r.dropped));
          out.sample("cairn_replication_followers_total", {{"event", "caught_up"}}, static_cast<double>(r.caught_up));
          out.family("cairn_replication_lag_bytes", "gauge",
                     "Bytes written on this owner and not yet sent to the shards' followers");
          out.sample("cairn_replication_lag_bytes", {}, static_cast<double>(r.lag_bytes));
          out.family("cairn_replication_lag_seconds", "gauge",
                     "How long the oldest change not yet sent to a follower has waited");
          out.sample("cairn_replication_lag_seconds", {}, r.lag_seconds);
          out.family("cairn_replication_alone_syncs_total", "counter",
                     "Syncs acknowledged on this owner's disk alone: the shard's record counted no follower in sync");
          out.sample("cairn_replication_alone_syncs_total", {}, static_cast<double>(r.alone));
          if (membership) {
            double in_sync = 0, alone = 0;
            for (unsigned shard : membership->owned()) {
              auto view = membership->follower(shard);
              (view && view->in_sync ? in_sync : alone) += 1;
            }
            out.family("cairn_replication_shards", "gauge",
                       "Shards this node owns whose follower is in sync, and those on this node's disk alone");
            out.sample("cairn_replication_shards", {{"state", "in_sync"}}, in_sync);
            out.sample("cairn_replication_shards", {{"state", "alone"}}, alone);
            out.family("cairn_cluster_takeovers_total", "counter",
                       "Shards this node took over as their in-sync follower (their owner was gone)");
            out.sample("cairn_cluster_takeovers_total", {}, static_cast<double>(membership->stats().takeovers));
          }
        }
        auto sent = calls->stats();
        out.family("cairn_cluster_calls_total", "counter",
                   "Tries of calls (Context::call) of actors on other nodes: answered, retried (no owner, moved or "
                   "unreachable), failed (no owner in time, or no answer)");
        out.sample("cairn_cluster_calls_total", {{"outcome", "answered"}}, static_cast<double>(sent.answered));
        out.sample("cairn_cluster_calls_total", {{"outcome", "retried"}}, static_cast<double>(sent.retried));
        out.sample("cairn_cluster_calls_total", {{"outcome", "failed"}}, static_cast<double>(sent.failed));
        if (!membership) return;
        if (mover) mover->write_metrics(out);
        auto stats = membership->stats();
        out.family("cairn_cluster_fenced", "gauge", "1 while this node may release no output (its etcd lease may lapse)");
        out.sample("cairn_cluster_fenced", {}, membership->fenced() ? 1.0 : 0.0);
        out.family("cairn_cluster_shards_owned", "gauge", "Shards this node owns now");
        out.sample("cairn_cluster_shards_owned", {}, static_cast<double>(membership->owned().size()));
        out.family("cairn_cluster_lease_renewals_total", "counter", "Lease renewals, by outcome");
        out.sample("cairn_cluster_lease_renewals_total", {{"outcome", "ok"}}, static_cast<double>(stats.renewals));
        out.sample("cairn_cluster_lease_renewals_total", {{"outcome", "failed"}},
                   static_cast<double>(stats.renewal_failures));
        out.family("cairn_cluster_lease_renew_seconds", "gauge", "How long the last successful renewal took");
        out.sample("cairn_cluster_lease_renew_seconds", {}, stats.last_renew_seconds);
        out.family("cairn_cluster_wrong_data_directory", "gauge",
                   "1 while this node claims none of its shards: they were given to another data directory");
        out.sample("cairn_cluster_wrong_data_directory", {}, stats.wrong_disk ? 1.0 : 0.0);
        out.family("cairn_cluster_joins_total", "counter", "Leases this node took (1, plus one per re-join after fencing)");
        out.sample("cairn_cluster_joins_total", {}, static_cast<double>(stats.joins));
        out.family("cairn_cluster_claims_total", "counter", "Shards this node claimed");
        out.sample("cairn_cluster_claims_total", {}, static_cast<double>(stats.claims));
      };
    }
    if (admin_token.empty()) return serve(runtime, std::move(web), std::move(extras), banner);
    GatewayOptions admin;
    admin.host = admin_host;
    admin.port = admin_port;
    admin.listen_fd = passed.admin_fd;
    admin.tls_cert_file = tls_cert;
    admin.tls_key_file = tls_key;
    admin.admin_token = admin_token;
    admin.max_connections = 64;
    admin.request_timeout = web.request_timeout;
    admin.header_timeout = web.header_timeout;
    admin.keep_alive_timeout = web.keep_alive_timeout;
    admin.errors = web.errors;
    if (!plugin_libraries.empty()) admin.reload = [plugins, &runtime] { return plugins->reload(runtime); };
    if (!etcd.empty()) {
      admin.not_ready = [link] { return link->not_ready(); };
      admin.cluster_status = [&membership](bool with_shards) {
        nlohmann::json out{{"node", nullptr}};
        if (!membership) return out;  // not joined yet
        out["node"] = membership->options().node_id;
        out["fenced"] = membership->fenced();
        out["wrong_data_directory"] = membership->stats().wrong_disk;
        auto coordinator = membership->coordinator();
        out["coordinator"] = coordinator ? nlohmann::json(*coordinator) : nlohmann::json();
        std::map<std::string, std::size_t> per_node;
        std::map<std::string, std::string> advertised;
        for (const auto& [id, url] : membership->nodes()) {
          per_node[id] = 0;
          advertised[id] = url;
        }
        auto shards = nlohmann::json::array();
        std::size_t unowned = 0, alone = 0;
        bool replicated = membership->options().replicate;
        for (unsigned shard = 0; shard < ActorId::shard_count; ++shard) {
          auto owner = membership->owner(shard);
          // Replication: the shard's follower and the nodes that hold every acknowledged write.
          auto add_replicas = [&](nlohmann::json& row) {
            if (!replicated) return;
            auto set = membership->replicas(shard);
            row["follower"] = set && !set->follower.empty() ? nlohmann::json(set->follower) : nlohmann::json(nullptr);
            row["in_sync"] = set ? set->in_sync : std::vector<std::string>{};
          };
          if (!owner) {
            ++unowned;
            if (with_shards) {
              nlohmann::json row{{"shard", shard}, {"node", nullptr}, {"epoch", nullptr}};
              add_replicas(row);
              shards.push_back(std::move(row));
            }
            continue;
          }
          ++per_node[owner->node];
          if (!advertised.count(owner->node)) advertised[owner->node] = owner->advertise;
          if (replicated) {
            auto set = membership->replicas(shard);
            if (!set || set->follower.empty() || !set->counts(set->follower)) ++alone;
          }
          if (with_shards) {
            nlohmann::json row{{"shard", shard}, {"node", owner->node}, {"epoch", owner->epoch}};
            add_replicas(row);
            shards.push_back(std::move(row));
          }
        }
        // Owned shards whose follower is not in sync (their writes are on the owner's disk alone).
        if (replicated) out["shards_not_replicated"] = alone;
        auto nodes = nlohmann::json::array();
        for (const auto& [id, count] : per_node) {
          nodes.push_back({{"node", id}, {"advertise", advertised[id]}, {"shards", count}});
        }
        out["nodes"] = std::move(nodes);
        out["shards_unowned"] = unowned;
        auto moves = nlohmann::json::array();
        for (const auto& move : membership->moves()) {
          moves.push_back({{"shard", move.shard}, {"from", move.from}, {"to", move.to}});
        }
        out["moves"] = std::move(moves);
        auto leaving = membership->leaving_nodes();
        out["leaving"] = leaving;
        if (with_shards) out["shards"] = std::move(shards);
        return out;
      };
    }
    if (cluster_admin) {
      // Set once the node has joined (before any request: the admin listener starts after).
      admin.cluster_admin = [cluster_admin](const Request& request,
                                            const std::function<Response(const Request&)>& local)
          -> std::optional<Response> {
        if (!*cluster_admin) return std::nullopt;
        return (*cluster_admin)->handle(request, local);
      };
    }
    extras.admin = std::move(admin);
    return serve(runtime, std::move(web), std::move(extras), banner);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}

}  // namespace cairn::gateway
