// RuntimeCore: the state behind Runtime and every Stub: the CAF actor system, the directory
// of instances (one host per actor id, spawned on first event, evicted when idle or to keep
// the live count under its cap), the socket table, the alarm index and its scheduler.
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "cairn/runtime.hpp"
#include "cairn/metrics.hpp"
#include "activity.hpp"
#include "alarm_index.hpp"
#include "data_layout.hpp"
#include "events.hpp"
#include "names_index.hpp"
#include "placement.hpp"
#include "reply_router.hpp"
#include "socket_table.hpp"
#include "storage_pool.hpp"

namespace cairn::detail {

class RuntimeCore : public std::enable_shared_from_this<RuntimeCore> {
 public:
  RuntimeCore(Registry registry, RuntimeOptions options);
  ~RuntimeCore();

  // Sends `event` to the host of `id`, spawning it first if it is not live (exactly one
  // host per id, however many threads ask at once). An event for an instance that is being
  // evicted waits and goes to its next host. After shutdown the event's reply fails.
  // sent: the event went to the host (or waits for its next one). Otherwise it was refused
  // and its reply told why: the actor's queue is full (overloaded), or the runtime stops, the
  // binding is unknown, the actor lives elsewhere (refused).
  enum class Delivery { sent, overloaded, refused };
  Delivery deliver(const ActorId& id, Event event);
  // A message from a client: answered here if the owner's auto-response rule matches (the
  // instance is not woken), otherwise an event of the owner. Ignored for unknown sockets.
  // Backpressure: see SocketFlow.
  SocketFlow deliver_socket_message(SocketId socket, std::string message, bool binary);
  // A close or error: an event of the owner; a socket never accepted is just forgotten.
  void deliver_socket_event(SocketEvent event);

  // This node, its callers' callbacks (every Event's ReplyTo points into it), and where
  // actors live (all here until cluster mode).
  NodeId node() const noexcept { return node_; }
  ReplyRouter& replies() { return replies_; }
  // Answer `to` on its node: this one's router (another node's, in cluster mode, gets it
  // over the connection the event came on). Any thread, no lock held.
  template <class Answer>
  void answer_reply(ReplyTo to, Answer&& answer) {
    if (to.node == node_) replies_.answer(to, std::forward<Answer>(answer));
  }
  void fail_reply(ReplyTo to, const Error& error) {
    if (to.node == node_) replies_.fail(to, error);
  }

  // Creates the actor's directory, <data>/_shards/NNNN/<binding>/ (if missing), and returns
  // the db path (data_layout.hpp). Each level of it not yet known durable in this process has
  // its parent fsync'd before this returns, or, given `owed`, lists the levels whose parents'
  // fsyncs are left to the caller, who reports them done with dirs_durable().
  std::filesystem::path database_path(const ActorId& id, std::vector<std::filesystem::path>* owed = nullptr);
  void dirs_durable(const std::vector<std::filesystem::path>& levels);
  // The db path of `id`, nothing created.
  std::filesystem::path database_file(const ActorId& id) const { return actor_database(options.data_dir, id); }

  // Called by the host of `id` once it has finished evicting itself (database closed).
  void host_stopped(const ActorId& id, std::uint64_t generation);
  // Called as the host of `id` ends for any reason. If it had not evicted itself (CAF ended
  // it), its entry is retired as if it had: what it held was answered 503 by the events'
  // destructors, and the next event (or one that waited) gets a new host.
  void host_gone(const ActorId& id, std::uint64_t generation);
  // Ends the host of `id` as CAF ends a failed actor (an exit message), outside the runtime's
  // control; false if it is not live. For tests of host_gone().
  bool kill_host(const ActorId& id);
  // Hosts that ended without evicting themselves, since start.
  std::uint64_t hosts_lost() const { return hosts_lost_.load(std::memory_order_acquire); }
  void instance_started() { instances_started_.fetch_add(1, std::memory_order_relaxed); }

  // Alarms. The index of every actor's soonest alarm (hosts write it at commit).
  AlarmIndex& alarm_index() { return *alarms_; }
  // The actors' recent events and per-actor counts, for operators (activity.hpp).
  ActivityTable& activity() { return activity_; }
  // After a host's commit: `soonest` is its soonest alarm now (or none).
  void alarms_committed(const ActorId& id, std::optional<std::int64_t> soonest);
  void alarm_ran() { alarms_run_.fetch_add(1, std::memory_order_relaxed); }
  void committed(std::size_t events, double seconds) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    committed_events_.fetch_add(events, std::memory_order_relaxed);
    commit_seconds_.observe(seconds);
    events_per_commit_.observe(static_cast<double>(events));
  }
  // An alarm ran `late` after it was due.
  void alarm_late(Clock::duration late) {
    alarm_lateness_.observe(std::max(0.0, std::chrono::duration<double>(late).count()));
  }
  NamesIndex& names() { return *names_; }
  // The threads that make hosts' commits durable (their WAL syncs).
  StoragePool& storage() { return *storage_; }
  // A host's database files grew (or shrank) by `delta` bytes. Any thread, lock-free.
  void database_bytes_changed(const std::string& binding, std::int64_t delta) {
    if (auto it = database_bytes_.find(binding); it != database_bytes_.end()) {
      it->second.fetch_add(delta, std::memory_order_relaxed);
    }
  }
  // Tells every actor with an alarm due by the clock's now to run it; returns how many.
  std::size_t fire_due_alarms();

  std::size_t evict_idle();
  bool evict(const ActorId& id);
  std::size_t evict_shard(unsigned shard);
  // The shortest idle timeout of any binding (0: none evicts by time).
  std::chrono::milliseconds shortest_idle_timeout() const;
  Result<std::size_t> replace_class(const std::string& binding, ActorFactory factory);
  // Hand-off (Runtime's, runtime_handoff.cpp).
  std::size_t shard_instances(unsigned shard) const;
  nlohmann::json shard_indexes(unsigned shard) const;
  void adopt_shard_indexes(const nlohmann::json& rows);
  void forget_shard_indexes(unsigned shard);
  nlohmann::json adopt_shard_files(unsigned shard);
  std::size_t close_shard_sockets(unsigned shard, int code, const std::string& reason);
  // The epoch at which this node owns `shard` now (0 on a single node, which owns all).
  std::optional<std::int64_t> owned_epoch(unsigned shard) const {
    if (!options.ownership) return 0;
    return options.ownership->epoch(shard);
  }
  // Whether new events of `shard` may enter (false while the shard is handed over).
  bool admits(unsigned shard) const { return !options.ownership || options.ownership->admits(shard); }
  // An RPC call of `target`: delivered here if this node serves its shard, else handed to
  // RuntimeOptions::remote_calls (cluster mode). `done` runs once, on any thread.
  // `trace`: the request the call descends from (the callee's Context::trace()).
  void call_actor(const ActorId& target, std::string method, nlohmann::json args, Stub::CallCallback done,
                  TraceContext trace = {});
  // The same, delivered on this node only (refused if it does not serve the shard).
  void call_here(const ActorId& target, std::string method, nlohmann::json args, Stub::CallCallback done,
                 TraceContext trace = {});
  // The same as call_actor without an answer (the reply a call brings back to its caller).
  void tell_actor(const ActorId& target, std::string method, nlohmann::json args, TraceContext trace = {});
  RuntimeStats stats() const;
  void write_metrics(metrics::TextWriter& out) const;

  // The admin API: runs `op` on the host of `id` (spawned for it if not live, and evicted
  // again after, so the operator's look does not keep it in memory) and waits for the
  // result. `facts`, if given, learns whether it was in memory before and its last event.
  // not_found if the actor has no database and `create` is false.
  struct AdminFacts {
    bool live = false;
    std::optional<std::int64_t> last_event_ms;
  };
  Result<nlohmann::json> admin(const ActorId& id, AdminEvent::Op op, std::string text,
                               std::size_t max_rows, bool create, AdminFacts* facts = nullptr);
  // Live (in memory, not stopping) hosts by binding.
  std::vector<std::pair<std::string, std::size_t>> live_by_binding() const;
  bool is_live(const std::string& hex) const;

  void shutdown();

  // Which bindings there are (fixed for the runtime's life); their factories as the runtime
  // started. New hosts take a binding's class from factories_.
  const Registry registry;
  const RuntimeOptions options;
  SocketTable sockets;

 private:
  // One actor id's place in the directory. Locking (see Stripe): fields marked [both] are
  // written only with the structure lock and the entry's stripe lock held, so either lock is
  // enough to read them; [structure] fields belong to the structure lock alone; atomics are
  // free.
  struct Entry {
    explicit Entry(ActorId id_in) : id(std::move(id_in)) {}
    ActorId id;
    caf::actor host;                 // [both]
    std::uint64_t generation = 0;    // [both]
    bool stopping = false;           // [both] told to evict itself; not yet stopped
    bool in_lru = false;             // [both] a live instance (counted against the cap)
    std::vector<Event> waiting;      // [structure] arrived while stopping: for the next host
    // Clock ticks of its last event, and a count of its events (approximate LRU: see
    // lru_victim_locked). Stamped by deliver() under the stripe lock only.
    std::atomic<Clock::duration::rep> last_used{0};
    std::atomic<std::uint64_t> touches{0};
    std::uint64_t touches_seen = 0;            // [structure] `touches` when placed in lru_
    std::list<Entry*>::iterator lru;           // [structure] valid while in_lru
    bool closing = false;   // [structure] evicted while live: its host still holds the database
    bool deferred = false;  // [structure] waiting for a place under the cap; no host yet
    // Requests and calls not yet answered, across this id's hosts (max_queued_events).
    std::shared_ptr<std::atomic<std::size_t>> queued = std::make_shared<std::atomic<std::size_t>>(0);
    bool admin_only = true;  // [structure] spawned for the admin API; no event of the actor's yet
  };
  // The directory is striped by id so that routing an event to a live instance (the hot
  // path) takes one stripe's lock only: actors in different stripes never wait for each
  // other, nor for a start or an eviction elsewhere. Everything that changes an entry's life
  // (start, evict, retire, defer), the LRU list and the cap's counts take the structure lock
  // (`mutex_`) first and then, briefly, the stripe of the entry they change: never two
  // stripes at once, and never the structure lock while holding a stripe. Map insertions and
  // erasures are such changes, so holding the structure lock alone is enough to look up.
  struct Stripe {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;  // by ActorId::hex()
  };
  static constexpr std::size_t stripe_count = 64;
  Stripe& stripe_of(const std::string& hex) const;
  // With the structure lock: the entry of `hex`, or null.
  Entry* find_locked(const std::string& hex) const;
  Entry& emplace_locked(const ActorId& id);
  void erase_locked(Entry& entry);
  // Sends to the entry's host under its stripe lock (so after its eviction order, nothing);
  // with `then_evict`, the eviction order follows in the same hold, so no event of another
  // thread can come between the two.
  void send_locked(Entry& entry, Event event, bool then_evict = false);

  // Spawns the entry's next host and hands it the events that waited. One `for_admin` (an
  // operator's operation only) is kept out of the LRU list and the live cap.
  void start_locked(Entry& entry, bool for_admin = false);
  // The entry becomes a live instance (most recently used).
  void enter_lru_locked(Entry& entry);
  // Each binding's class as new hosts get it (replace_class). mutex_.
  std::map<std::string, std::shared_ptr<const ActorFactory>, std::less<>> factories_;
  enum class Why { idle, lru, forced, admin };
  void evict_locked(Entry& entry, Why why);
  // The least recently used live instance (approximately), or null if none is live.
  Entry* lru_victim_locked();
  // The host of `entry` has stopped (entry.stopping): its events that waited go to a new host,
  // else the entry leaves the directory. At shutdown its waiting events go into `dropped`.
  // The caller holds a DeferReplies (declared before the lock).
  void retire_locked(Entry& entry, std::vector<Event>& dropped);
  // Evicts the least recently used live instances until a new one fits under the cap.
  void make_room_locked();
  // True if a new live instance may start now: no start waits before it and live + closing
  // < max_live_instances. Otherwise the caller defers it.
  bool room_for_live_locked();
  // The entry waits (its events, already in `waiting`, with it) for a place; may start at
  // once if one is free. Evicts what the waiting starts need.
  void defer_locked(Entry& entry);
  // Evicts least recently used live instances until each waiting start has a closing one
  // to take the place of.
  void make_victims_locked();
  // Starts waiting entries while there is room.
  void start_deferred_locked();
  // Every entry, with the structure lock held.
  template <class F>
  void for_each_locked(F&& f) const {
    for (const auto& stripe : stripes_) {
      for (const auto& [hex, entry] : stripe.entries) f(hex, entry);
    }
  }
  void sweep_loop();
  void alarm_loop();

  const NodeId node_ = ReplyRouter::next_node_id();
  // Declared before the actor system: it outlives the hosts that answer through it.
  ReplyRouter replies_{node_};
  std::unique_ptr<Placement> placement_ = std::make_unique<LocalPlacement>(node_);
  // Before the actor system: hosts post to it until they end (emptied in shutdown()).
  std::unique_ptr<StoragePool> storage_;
  caf::actor_system_config config_;
  std::unique_ptr<caf::actor_system> system_;
  mutable std::mutex mutex_;  // the structure lock (see Stripe)
  mutable std::array<Stripe, stripe_count> stripes_;
  std::size_t entries_ = 0;      // in all stripes
  std::list<Entry*> lru_;        // live instances, roughly most recently used first
  std::size_t closing_ = 0;      // evicted live instances whose hosts have not stopped yet
  std::deque<std::string> deferred_;  // entries waiting for a place under the cap, in order
  std::uint64_t next_generation_ = 1;
  // Directories under the data directory seen by database_path(): entry durable in the parent?
  std::map<std::string, bool> directories_;
  bool stopping_ = false;

  std::atomic<std::uint64_t> instances_started_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> evictions_idle_{0};
  std::atomic<std::uint64_t> evictions_lru_{0};
  std::atomic<std::uint64_t> evictions_forced_{0};
  std::atomic<std::size_t> queued_max_{0};  // the most requests one actor has had waiting
  metrics::Histogram commit_seconds_{metrics::seconds_buckets()};
  metrics::Histogram events_per_commit_{metrics::exponential_buckets(1, 2, 7)};
  metrics::Histogram alarm_lateness_{metrics::seconds_buckets()};
  // The last event of each instance that left memory (clock ticks), by hex.
  std::unordered_map<std::string, std::int64_t> last_event_;
  std::atomic<std::uint64_t> alarms_run_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> committed_events_{0};
  std::atomic<std::uint64_t> overloaded_{0};
  std::atomic<std::uint64_t> hosts_lost_{0};
  // Bytes of each binding's databases: filled in the constructor, never resized after (so
  // read without a lock), updated by hosts.
  std::map<std::string, std::atomic<std::int64_t>> database_bytes_;

  std::unique_ptr<AlarmIndex> alarms_;
  ActivityTable activity_{options.recent_events};
  std::unique_ptr<NamesIndex> names_;
  std::mutex alarm_mutex_;
  std::condition_variable alarm_cv_;
  bool alarm_stop_ = false;
  bool alarm_kick_ = false;
  std::thread alarm_thread_;

  std::mutex sweep_mutex_;
  std::condition_variable sweep_cv_;
  bool sweep_stop_ = false;
  std::thread sweeper_;
};

}  // namespace cairn::detail
