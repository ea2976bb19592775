// Runtime: owns the actor system, the directory of live actors, the socket table and the
// alarm index (<data>/_cairn/alarms.sqlite).
// One per process; made in main() after the Registry is filled. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cairn/clock.hpp"
#include "cairn/limits.hpp"
#include "cairn/metrics.hpp"
#include "cairn/ownership.hpp"
#include "cairn/registry.hpp"
#include "cairn/result.hpp"
#include "cairn/stub.hpp"
#include "cairn/websocket.hpp"

namespace cairn {

class Replicator;  // cairn/replication.hpp

enum class Durability {
  full,    // every commit is fsync'd: an answer means the write is on disk (the default)
  normal,  // WAL with synchronous=NORMAL: survives a process crash, not a power loss
};

struct RuntimeOptions {
  std::filesystem::path data_dir = "data";
  Durability durability = Durability::full;
  // Threads that run actor events and their commits. Commits do not wait for the disk here
  // (the storage threads below do), but opening a new actor's database and checkpoints still
  // sync on these threads.
  std::size_t threads = 8;
  // Threads that make commits durable (durability full): each waits on one fsync, and the disk
  // merges the fsyncs of many files in flight, so this is sized by fsyncs in flight, not by
  // cores. An actor runs its next events while its last commit syncs; their outputs leave
  // once it (and their own) is durable. At least 1.
  std::size_t storage_threads = limits::default_storage_threads;
  std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  // An instance with no event for this long (by `clock`) is evicted: object destroyed,
  // database closed, sockets kept open. Zero: only the cap below evicts.
  std::chrono::milliseconds idle_timeout = limits::default_idle_timeout;
  // The same for the bindings named here (the config file's [bindings.NAME] idle-timeout);
  // zero: never by time.
  std::map<std::string, std::chrono::milliseconds, std::less<>> idle_timeout_by_binding = {};
  // At most this many instances in memory (each holds 2 descriptors for its database); the
  // least recently used one is evicted to make room. At least 1.
  std::size_t max_live_instances = limits::default_max_live_instances;
  // At most this many requests and calls may wait for one actor (queued or running); one
  // more is answered at once with Code::overloaded (503, Retry-After) and never runs.
  // WebSocket messages and alarms are not counted. At least 1.
  std::size_t max_queued_events = limits::default_max_queued_events;
  // The longest one event may take: past it, SQLite interrupts the event's SQL (checked
  // every few thousand steps of its virtual machine), the event fails with 500 and the
  // instance is reset. A runaway query cannot pin an actor thread. Code that loops without
  // running SQL is not stopped (C++ cannot be pre-empted safely). Zero: no budget.
  std::chrono::milliseconds event_budget = limits::default_event_budget;
  // Each actor's last events kept for operators (the admin API's "recent_events"; at most
  // limits::max_recent_events), and the per-actor counts behind /admin/top. Zero: neither.
  std::size_t recent_events = limits::default_recent_events;
  // Each actor's committed changes are kept this long, so that it can be restored to any
  // moment within it (Admin::restore, cairnctl restore --at). Zero: no history is kept.
  std::chrono::seconds history_retention{0};
  // The most bytes of changes kept per actor; the oldest go first beyond it.
  std::int64_t history_max_bytes = limits::default_history_max_bytes;
  // Cluster mode: the shards this node owns (cairn/ownership.hpp). Null: all of them.
  std::shared_ptr<const Ownership> ownership;
  // Cluster mode: how calls reach actors of shards this node does not own. Null: they fail.
  std::shared_ptr<RemoteCalls> remote_calls;
  // Replication (cairn/replication.hpp): every change to the files of the shards is handed
  // to it, and every sync waits for it. Null: the files live on this disk alone.
  std::shared_ptr<Replicator> replicator;
};

struct RuntimeStats {
  std::size_t live_instances = 0;      // in memory and serving
  std::size_t stopping_instances = 0;  // evicted, finishing their last batch
  std::size_t websockets = 0;          // every open socket, hibernated or not
  std::uint64_t instances_started = 0; // constructor calls since start
  std::uint64_t evictions = 0;         // idle, LRU and forced, since start
  std::uint64_t alarms_run = 0;        // on_alarm calls since start (retries included)
  std::size_t actors_with_alarms = 0;  // actors with a pending alarm
  std::uint64_t commits = 0;           // transactions committed since start (group commit:
  std::uint64_t committed_events = 0;  // several events each; their ratio is events per commit)
  std::uint64_t overloaded = 0;        // requests refused since start: an actor's queue was full
};

// Raises this process's soft limit on open descriptors to its hard limit; returns the new
// soft limit. Call once at start-up: every live instance holds 2 and every socket 1.
std::uint64_t raise_descriptor_limit();

class Runtime {
 public:
  // Creates data_dir if needed. Throws std::runtime_error if it cannot be used.
  Runtime(Registry registry, RuntimeOptions options);
  // Calls shutdown().
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The stub of actor `name` under `binding`; returns at once (the actor starts on its first
  // event). not_found for an unregistered binding, invalid_argument for a bad name.
  Result<Stub> get(std::string_view binding, std::string_view name) const;

  // --- The socket table, for the gateway. Any thread. ---
  // Reserves an id for an upgrade request; pass it as Request::websocket.
  SocketId reserve_socket(std::shared_ptr<SocketSink> sink);
  // Forgets a socket the actor did not accept, or one the gateway failed to open.
  void release_socket(SocketId id);
  // Events from the client; each runs as an event of the socket's actor. A message is
  // counted against its actor's max_queued_events until it has run; see SocketFlow for what
  // the gateway must do next (stop reading a socket whose actor is behind: backpressure).
  SocketFlow socket_message(SocketId id, std::string message, bool binary);
  void socket_closed(SocketId id, int code, std::string reason);
  void socket_error(SocketId id, std::string error);

  // --- The lifecycle. ---
  // Evicts every instance idle for options.idle_timeout by the clock's now; returns how many.
  // The runtime calls this by itself a few times per timeout; a test with a ManualClock
  // advances the clock and calls it.
  std::size_t evict_idle();
  // Evicts instance (binding, name) now, after the events already sent to it. False if it was
  // not live; not_found / invalid_argument as get().
  Result<bool> evict(std::string_view binding, std::string_view name);
  // Evicts every live instance of `shard` (cluster mode: its owner or epoch changed); returns
  // how many.
  std::size_t evict_shard(unsigned shard);
  // New code for a class (a plugin's new version: cairn/plugin.hpp): instances of `binding`
  // started from now on run `factory`. Every live one finishes the events already sent to it
  // and is evicted (its WebSockets stay open, hibernated; its alarms stay set), so each wakes
  // on the new code at its next event: Durable Objects' "code was updated" reset. Returns
  // how many were evicted; not_found for a binding not registered (bindings are fixed).
  Result<std::size_t> replace_class(const std::string& binding, ActorFactory factory);
  RuntimeStats stats() const;

  // --- Handing a shard to another node (cluster mode). Any thread. ---
  // Its instances still open: live, finishing their last batch, or waiting to start. A
  // hand-off stops admitting the shard's events (Ownership::admits), evicts its instances
  // and waits for this to reach 0: its files are then closed and stay so.
  std::size_t shard_instances(unsigned shard) const;
  // <data_dir>/_shards/NNNN: the shard's databases.
  std::filesystem::path shard_dir(unsigned shard) const;
  // The shard's rows of this node's alarm and names indexes, as JSON:
  // {"alarms": [{"binding", "name", "due"}], "names": [{"binding", "name", "created_ms"}]}.
  nlohmann::json shard_indexes(unsigned shard) const;
  // Adds rows from another node's shard_indexes() (durable on return; alarms queued).
  // Throws std::runtime_error (bad rows, or the write failed).
  void adopt_shard_indexes(const nlohmann::json& rows);
  // Drops the shard's rows (it moved away). Throws std::runtime_error.
  void forget_shard_indexes(unsigned shard);
  // A follower that takes a shard over (replication, failover): the shard's rows of the
  // indexes, read from its files (each actor database names its actor: _cairn_actor) rather
  // than sent: its rows here are replaced by one per database found, with the soonest alarm
  // each one holds. Call it before the shard is owned here (it opens the files itself).
  // Returns the rows adopted. A database that does not name its actor (written only by a
  // version before the name was kept) is skipped with a warning. Throws std::runtime_error.
  nlohmann::json adopt_shard_files(unsigned shard);
  // Closes every WebSocket of the shard's actors with `code` (1012: clients reconnect).
  std::size_t close_shard_sockets(unsigned shard, int code, const std::string& reason);

  // --- Alarms. ---
  // Tells every actor with an alarm due by the clock's now to run it (re-creating evicted
  // ones); returns how many were told. The runtime does this by itself as alarms fall due;
  // a test with a ManualClock advances the clock and calls it.
  std::size_t fire_due_alarms();

  // Finishes every actor's open batch (commit, answers released), closes the databases and
  // stops the actor system. Later calls answer unavailable. Idempotent; blocks.
  void shutdown();

  // Appends the runtime's metrics (instances, events, commits, evictions, alarms, storage,
  // descriptors) in the Prometheus text format. Any thread.
  void write_metrics(metrics::TextWriter& out) const;

 private:
  friend class Admin;
  std::shared_ptr<detail::RuntimeCore> core_;
};

}  // namespace cairn
