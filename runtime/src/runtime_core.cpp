// RuntimeCore: directory of hosts, lazy spawn, eviction (idle, LRU, forced), data layout,
// shutdown.
#include "runtime_core.hpp"
#include "database_vfs.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <caf/all.hpp>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "cairn/limits.hpp"
#include "cairn/sql.hpp"
#include "database.hpp"
#include "host.hpp"

namespace cairn::detail {
namespace {
// The last event times of evicted actors kept for the admin API (~100 bytes each).
constexpr std::size_t max_remembered_last_events = 100'000;

// Actor databases under `dir` (<dir>/_shards/NNNN/<binding>/) and their bytes, by binding.
std::map<std::string, std::uint64_t> bytes_by_directory(const std::filesystem::path& dir) {
  std::map<std::string, std::uint64_t> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (!it->is_regular_file(size_ec)) continue;
    // What hosts report later: databases and their WALs (-shm, -journal and strays are not
    // theirs to subtract again).
    auto file = it->path().filename().string();
    if (!file.ends_with(".sqlite") && !file.ends_with(".sqlite-wal")) continue;
    auto size = it->file_size(size_ec);
    if (size_ec) continue;
    auto relative = it->path().lexically_relative(dir);
    std::vector<std::string> parts;
    for (const auto& part : relative) parts.push_back(part.string());
    if (parts.size() != 4 || parts[0] != "_shards") continue;
    out[parts[2]] += size;
  }
  return out;
}

}  // namespace

RuntimeCore::RuntimeCore(Registry registry_in, RuntimeOptions options_in)
    : registry(std::move(registry_in)), options(std::move(options_in)) {
  for (const auto& binding : registry.bindings()) {
    factories_.emplace(binding, std::make_shared<const ActorFactory>(*registry.find(binding)));
  }
  if (options.max_live_instances == 0) {
    throw std::invalid_argument("max_live_instances must be at least 1");
  }
  if (options.storage_threads == 0) throw std::invalid_argument("storage_threads must be at least 1");
  if (options.max_queued_events == 0) {
    throw std::invalid_argument("max_queued_events must be at least 1");
  }
  if (!options.clock) throw std::invalid_argument("RuntimeOptions::clock must not be null");
  if (options.recent_events > limits::max_recent_events) {
    throw std::invalid_argument("recent_events must be at most " + std::to_string(limits::max_recent_events));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec || !std::filesystem::is_directory(options.data_dir)) {
    throw std::runtime_error("cannot use data directory " + options.data_dir.string() + ": " +
                             (ec ? ec.message() : "not a directory"));
  }
  if (::access(options.data_dir.c_str(), W_OK) != 0) {
    throw std::runtime_error("data directory " + options.data_dir.string() + " is not writable");
  }
  config_.set("scheduler.max-threads",
              static_cast<caf::config_value::integer>(options.threads == 0 ? 1 : options.threads));
  // Work sharing, not CAF's default work stealing: idle stealing workers poll (sleeping
  // 50 us at a time for a while after each event) and take the cores the I/O threads need.
  // Measured on 2 cores, same runs: broadcast to 1,000 sockets p50 10-13 ms vs 14-17 ms;
  // GET /seats 13.9-15.3k vs 11.7-12.8k req/s; bookings 6.4-6.5k vs 4.5-5.1k/s.
  config_.set("scheduler.policy", caf::atom("sharing"));
  alarms_ = std::make_unique<AlarmIndex>(
      options.data_dir / "_cairn" / "alarms.sqlite", options.durability,
      [this](const std::string& binding) { return registry.find(binding) != nullptr; });
  names_ = std::make_unique<NamesIndex>(options.data_dir / "_cairn" / "names.sqlite");
  sync_path(options.data_dir);
  // After the indexes: their exclusive locks keep a second process off the directory.
  convert_to_shards(options.data_dir);
  // The databases' bytes are counted once here, then kept as running totals that hosts
  // update (database_bytes_changed): a /metrics scrape never walks the data directory.
  for (const auto& binding : registry.bindings()) database_bytes_[binding] = 0;
  for (const auto& [dir, bytes] : bytes_by_directory(options.data_dir)) {
    if (auto it = database_bytes_.find(dir); it != database_bytes_.end()) {
      it->second.store(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
    }
  }
  // Before any database of a shard opens: each file takes its route when it is opened.
  if (options.replicator) route_replication(options.data_dir, options.replicator);
  storage_ = std::make_unique<StoragePool>(options.storage_threads);
  system_ = std::make_unique<caf::actor_system>(config_);
  if (shortest_idle_timeout().count() > 0) sweeper_ = std::thread([this] { sweep_loop(); });
  alarm_thread_ = std::thread([this] { alarm_loop(); });
}

RuntimeCore::~RuntimeCore() { shutdown(); }

std::filesystem::path RuntimeCore::database_path(const ActorId& id, std::vector<std::filesystem::path>* owed) {
  auto file = database_file(id);
  auto dir = file.parent_path();
  std::lock_guard lock(mutex_);
  if (auto known = directories_.find(dir.string()); known != directories_.end() && known->second) return file;
  // Each level up to the data directory (_shards, the shard, the binding) whose entry in its
  // parent is not known durable in this process owes its parent's fsync, so that a database
  // created in it cannot vanish with it after a crash: one made now, and one found on disk too
  // (a process that crashed may have made it and never synced it). The fsyncs wait for the
  // first sync of a database in it (off the actor's thread), or are done here if not `owed`.
  std::filesystem::create_directories(dir);
  std::vector<std::filesystem::path> levels;
  for (auto level = dir; level != options.data_dir && level != level.parent_path(); level = level.parent_path()) {
    if (!directories_.try_emplace(level.string(), false).first->second) levels.push_back(level);
  }
  if (owed != nullptr) {
    *owed = std::move(levels);
  } else {
    for (const auto& level : levels) {
      if (!sync_path(level.parent_path())) {
        throw SqlError(SQLITE_IOERR, "cannot fsync " + level.parent_path().string() + ": " + std::strerror(errno), "");
      }
      directories_[level.string()] = true;
    }
  }
  return file;
}

void RuntimeCore::dirs_durable(const std::vector<std::filesystem::path>& levels) {
  std::lock_guard lock(mutex_);
  for (const auto& level : levels) directories_[level.string()] = true;
}

RuntimeCore::Stripe& RuntimeCore::stripe_of(const std::string& hex) const {
  return stripes_[std::hash<std::string>{}(hex) % stripe_count];
}

RuntimeCore::Entry* RuntimeCore::find_locked(const std::string& hex) const {
  auto& entries = stripe_of(hex).entries;
  auto it = entries.find(hex);
  return it == entries.end() ? nullptr : const_cast<Entry*>(&it->second);
}

RuntimeCore::Entry& RuntimeCore::emplace_locked(const ActorId& id) {
  Stripe& stripe = stripe_of(id.hex());
  std::lock_guard lock(stripe.mutex);
  auto [it, inserted] = stripe.entries.try_emplace(id.hex(), id);
  entries_ += inserted ? 1 : 0;
  return it->second;
}

void RuntimeCore::erase_locked(Entry& entry) {
  Stripe& stripe = stripe_of(entry.id.hex());
  const std::string hex = entry.id.hex();  // the key outlives the entry it is part of
  std::lock_guard lock(stripe.mutex);
  entries_ -= stripe.entries.erase(hex);
}

void RuntimeCore::send_locked(Entry& entry, Event event, bool then_evict) {
  {
    std::lock_guard lock(stripe_of(entry.id.hex()).mutex);
    caf::anon_send(entry.host, std::move(event));
    if (!then_evict) return;
    entry.stopping = true;  // from here on the hot path leaves it alone
    caf::anon_send(entry.host, evict_atom::value, entry.generation);
  }
  evict_locked(entry, Why::admin);  // the books (its eviction order is already sent)
}

void RuntimeCore::start_locked(Entry& entry, bool for_admin) {
  // A host started only for an operator is not a live instance: it does not count against
  // max_live_instances and pushes no live one out (it leaves right after its operation; at
  // most one per admin worker is open at a time). Callers of a live start made room first.
  {
    std::lock_guard lock(stripe_of(entry.id.hex()).mutex);
    entry.generation = next_generation_++;
    // Lazily started: it runs nothing before its first message (the waiting events, sent
    // below: keep them after the functor), so it cannot have ended before the functor is
    // attached (CAF would run it at once, here, under these locks).
    // The class as it is now (replace_class may give a binding a new one for later hosts).
    auto factory = factories_.find(entry.id.binding());
    entry.host = system_->spawn<Host, caf::lazy_init>(this, entry.id, factory->second, entry.generation);
    // A host that ends without evicting itself (CAF ended it: an exception that escaped
    // every catch, an exit message) must not leave its entry pointing at a dead mailbox.
    // Runs on the host's thread as it ends, never under these locks.
    std::weak_ptr<RuntimeCore> weak = weak_from_this();
    entry.host->attach_functor([weak, id = entry.id, generation = entry.generation] {
      if (auto core = weak.lock()) core->host_gone(id, generation);
    });
    entry.stopping = false;
    entry.last_used.store(options.clock->now().time_since_epoch().count(), std::memory_order_relaxed);
    entry.in_lru = !for_admin;
    // Events that waited for this host go first, before the hot path can see it live.
    for (auto& event : std::exchange(entry.waiting, {})) caf::anon_send(entry.host, std::move(event));
  }
  if (!for_admin) {
    lru_.push_front(&entry);
    entry.lru = lru_.begin();
    entry.touches_seen = entry.touches.load(std::memory_order_relaxed);
  }
}

void RuntimeCore::enter_lru_locked(Entry& entry) {
  {
    std::lock_guard lock(stripe_of(entry.id.hex()).mutex);
    entry.in_lru = true;
  }
  lru_.push_front(&entry);
  entry.lru = lru_.begin();
  entry.touches_seen = entry.touches.load(std::memory_order_relaxed);
}

RuntimeCore::Delivery RuntimeCore::deliver(const ActorId& id, Event event) {
  // An event sent to a host that has just died is destroyed inside the send, and its reply
  // fails from its destructor: that callback must run after the lock is released (it may
  // call back into the runtime, as a Context::call reply does). Declared before the locks.
  DeferReplies defer;
  auto* socket = std::get_if<SocketEvent>(&event.body);
  SocketCredit* credit = socket != nullptr ? socket->credit.get() : nullptr;
  // The caller's reply, if it is this node's (for the queue count): looked up outside the lock.
  std::shared_ptr<PendingReply> waiting_reply =
      event.reply && event.reply.node == node_ ? replies_.find(event.reply) : nullptr;
  auto refuse = [&](const Error& error, Delivery why = Delivery::refused) {
    if (event.reply) replies_.fail(event.take_reply(), error);
    return why;
  };
  if (placement_->owner(id) != node_) {
    // Cluster mode forwards it to the owner; a single node owns everything.
    return refuse(Error{Code::unavailable, "actor " + id.binding() + " lives on another node"});
  }
  if (!owned_epoch(id.shard()) || !admits(id.shard())) {
    // Cluster mode: the gateway sends such requests to the shard's owner; one that arrives
    // here anyway (the shard moved meanwhile, is being handed over, or this node fenced
    // itself) is refused.
    return refuse(Error{Code::unavailable, "actor " + id.binding() + "'s shard " + std::to_string(id.shard()) +
                                               (admits(id.shard()) ? " is not served by this node now"
                                                                   : " is moving to another node") +
                                               "; try again shortly"});
  }
  auto count_in = [&](Entry& entry) {
    if (credit) credit->count_in(entry.queued);
    if (!waiting_reply) return;
    waiting_reply->count_in(entry.queued);
    std::size_t depth = entry.queued->load(std::memory_order_relaxed);
    std::size_t peak = queued_max_.load(std::memory_order_relaxed);
    while (depth > peak && !queued_max_.compare_exchange_weak(peak, depth, std::memory_order_relaxed)) {
    }
  };
  auto full = [&](const Entry& entry) {
    return (event.reply || credit) && entry.queued->load(std::memory_order_relaxed) >= options.max_queued_events;
  };
  auto overloaded = [&] {
    overloaded_.fetch_add(1, std::memory_order_relaxed);
    return refuse(Error{Code::overloaded,
                        "actor " + id.binding() + " '" + id.name().substr(0, 64) + "' has " +
                            std::to_string(options.max_queued_events) +
                            " requests waiting (--max-queued-events); try again shortly"},
                  Delivery::overloaded);
  };
  auto touch = [&](Entry& entry) {
    entry.last_used.store(options.clock->now().time_since_epoch().count(), std::memory_order_relaxed);
    entry.touches.fetch_add(1, std::memory_order_relaxed);
  };
  const std::string& hex = id.hex();
  Stripe& stripe = stripe_of(hex);
  {
    // The hot path: a live instance, under its stripe's lock only. Sent under it, so no
    // event can reach a host after its eviction order (given under the same lock).
    std::unique_lock lock(stripe.mutex);
    auto it = stripe.entries.find(hex);
    if (it != stripe.entries.end() && it->second.in_lru && !it->second.stopping) {
      Entry& entry = it->second;
      if (full(entry)) {
        lock.unlock();
        return overloaded();
      }
      touch(entry);
      count_in(entry);
      caf::anon_send(entry.host, std::move(event));
      return Delivery::sent;
    }
  }
  std::unique_lock lock(mutex_);
  if (stopping_) {
    lock.unlock();
    return refuse(Error{Code::unavailable, "the runtime is shutting down"});
  }
  if (!admits(id.shard())) {
    // Asked again under the structure lock: a hand-off that closed the shard and then saw
    // none of its hosts left (shard_instances, under this lock) must not see one start.
    lock.unlock();
    return refuse(Error{Code::unavailable, "actor " + id.binding() + "'s shard " + std::to_string(id.shard()) +
                                               " is moving to another node; try again shortly"});
  }
  Entry* entry = find_locked(hex);
  if (entry == nullptr) {
    if (registry.find(id.binding()) == nullptr) {
      lock.unlock();
      return refuse(Error{Code::not_found, "no actor class is bound to " + id.binding()});
    }
    entry = &emplace_locked(id);
    entry->admin_only = false;
    count_in(*entry);
    entry->waiting.push_back(std::move(event));  // sent by the start, now or when deferred
    if (!room_for_live_locked()) {
      // Every place under the cap is taken, some by instances still closing: this one starts
      // when one of them has closed its database (RuntimeOptions::max_live_instances).
      defer_locked(*entry);
      return Delivery::sent;
    }
    start_locked(*entry);
    return Delivery::sent;
  }
  if (full(*entry)) {
    lock.unlock();
    return overloaded();
  }
  if (entry->stopping) {
    // The old host still has the database open: the event goes to the next one.
    count_in(*entry);
    entry->waiting.push_back(std::move(event));
    return Delivery::sent;
  }
  entry->admin_only = false;
  if (!entry->in_lru) {
    // A host started for an operator, now asked to serve: it needs a place under the cap
    // like any start. (Unreachable today: such hosts get their eviction order at once.)
    count_in(*entry);
    entry->waiting.push_back(std::move(event));
    if (room_for_live_locked()) {
      enter_lru_locked(*entry);
      std::lock_guard stripe_lock(stripe.mutex);
      for (auto& waiting : std::exchange(entry->waiting, {})) caf::anon_send(entry->host, std::move(waiting));
    } else {
      evict_locked(*entry, Why::admin);  // its next host takes the event, deferred
    }
    return Delivery::sent;
  }
  count_in(*entry);
  std::lock_guard stripe_lock(stripe.mutex);
  touch(*entry);
  caf::anon_send(entry->host, std::move(event));
  return Delivery::sent;
}

SocketFlow RuntimeCore::deliver_socket_message(SocketId socket, std::string message, bool binary) {
  auto route = sockets.route(socket);
  if (!route.entry || !route.owner) return SocketFlow::read_on;  // unknown, or not (yet) accepted
  if (route.rule && !binary) {
    if (auto reply = route.rule->answer(message)) {
      route.entry->auto_response_at.store(options.clock->now().time_since_epoch().count());
      route.entry->sink->send(std::make_shared<const std::string>(std::move(*reply)), false);
      return SocketFlow::read_on;
    }
  }
  auto credit = std::make_shared<SocketCredit>(route.entry);
  auto waiting = credit->waiting();
  auto delivered = deliver(route.owner->id, Event{SocketEvent{socket, SocketEvent::Kind::message,
                                                              std::move(message), binary, 0, std::move(credit)}});
  if (delivered != Delivery::sent) {
    const auto& id = route.owner->id;
    if (delivered == Delivery::overloaded) {
      route.entry->sink->close(limits::overloaded_close_code,
                               "actor " + id.binding() + " has " + std::to_string(options.max_queued_events) +
                                   " events waiting (--max-queued-events); try again later");
    } else if (!admits(id.shard())) {
      // Its shard is being handed to another node: the client reconnects (through any node).
      route.entry->sink->close(1012, "actor " + id.binding() + " is moving to another node; reconnect");
    } else {
      route.entry->sink->close(1011, "the runtime cannot run actor " + id.binding() + " now");
    }
    return SocketFlow::refused;
  }
  if (waiting < limits::max_socket_messages_waiting) return SocketFlow::read_on;
  // The gateway stops reading; the credit that frees enough room resumes it. If the actor
  // caught up meanwhile, exactly one side takes the flag back (see ~SocketCredit).
  auto& entry = *route.entry;
  entry.paused.store(true, std::memory_order_release);
  if (entry.waiting.load(std::memory_order_acquire) <= limits::max_socket_messages_waiting / 2 &&
      entry.paused.exchange(false, std::memory_order_acq_rel)) {
    return SocketFlow::read_on;
  }
  return SocketFlow::pause;
}

void RuntimeCore::deliver_socket_event(SocketEvent event) {
  auto route = sockets.route(event.socket);
  if (!route.entry) return;
  if (!route.owner) {  // never accepted: nobody to tell
    sockets.remove(event.socket);
    return;
  }
  deliver(route.owner->id, Event{std::move(event)});
}

void RuntimeCore::evict_locked(Entry& entry, Why why) {
  if (entry.in_lru) {
    // Still holding its database until its host stops: it keeps its place under the cap.
    lru_.erase(entry.lru);
    entry.closing = true;
    ++closing_;
  }
  {
    std::lock_guard lock(stripe_of(entry.id.hex()).mutex);
    bool ordered = entry.stopping;  // send_locked(then_evict) sent the order already
    entry.stopping = true;
    entry.in_lru = false;
    // Queued behind every event already sent: they run first, then the host closes.
    if (!ordered) caf::anon_send(entry.host, evict_atom::value, entry.generation);
  }
  if (why != Why::admin) evictions_.fetch_add(1, std::memory_order_relaxed);
  if (why == Why::idle) evictions_idle_.fetch_add(1, std::memory_order_relaxed);
  if (why == Why::lru) evictions_lru_.fetch_add(1, std::memory_order_relaxed);
  if (why == Why::forced) evictions_forced_.fetch_add(1, std::memory_order_relaxed);
}

RuntimeCore::Entry* RuntimeCore::lru_victim_locked() {
  // An approximation of LRU (CLOCK, or "second chance"), so that the hot path never takes
  // the structure lock to reorder a list: the list is in order of when each instance was
  // last placed in it, and one used since then goes back to the front instead of out. Each
  // instance moves at most once per call.
  for (std::size_t turns = lru_.size(); !lru_.empty(); --turns) {
    Entry* oldest = lru_.back();
    auto touches = oldest->touches.load(std::memory_order_relaxed);
    if (touches == oldest->touches_seen || turns == 0) return oldest;
    oldest->touches_seen = touches;
    lru_.splice(lru_.begin(), lru_, oldest->lru);
  }
  return nullptr;
}

void RuntimeCore::make_room_locked() {
  while (lru_.size() + closing_ >= options.max_live_instances && !lru_.empty()) {
    evict_locked(*lru_victim_locked(), Why::lru);
  }
}

bool RuntimeCore::room_for_live_locked() {
  // Starts that already wait go first (in order): a busy actor must not keep taking the
  // place that one of them waits for.
  return deferred_.empty() && lru_.size() + closing_ < options.max_live_instances;
}

void RuntimeCore::make_victims_locked() {
  // Instances that are closing still hold their databases (descriptors): each waiting start
  // needs one of them. The least recently used live ones go, one per waiting start.
  while (closing_ < deferred_.size() && !lru_.empty()) evict_locked(*lru_victim_locked(), Why::lru);
}

void RuntimeCore::defer_locked(Entry& entry) {
  {
    std::lock_guard lock(stripe_of(entry.id.hex()).mutex);
    entry.stopping = true;                        // its events wait, as for a host that is stopping
    entry.generation = next_generation_++;        // no message of an older host matches it
  }
  entry.deferred = true;
  deferred_.push_back(entry.id.hex());
  start_deferred_locked();  // a place may be free already (another start was waiting)
  make_victims_locked();
}

void RuntimeCore::start_deferred_locked() {
  while (!deferred_.empty() && lru_.size() + closing_ < options.max_live_instances) {
    Entry* entry = find_locked(deferred_.front());
    deferred_.pop_front();
    if (entry == nullptr || !entry->deferred) continue;
    entry->deferred = false;
    start_locked(*entry);
  }
  make_victims_locked();
}

void RuntimeCore::host_stopped(const ActorId& id, std::uint64_t generation) {
  DeferReplies defer;          // see deliver()
  std::vector<Event> dropped;  // answered (503) outside the lock
  std::unique_lock lock(mutex_);
  Entry* entry = find_locked(id.hex());
  if (entry == nullptr || entry->generation != generation || !entry->stopping) return;
  retire_locked(*entry, dropped);
}

void RuntimeCore::host_gone(const ActorId& id, std::uint64_t generation) {
  DeferReplies defer;
  std::vector<Event> dropped;
  std::unique_lock lock(mutex_);
  if (stopping_) return;  // every host ends at shutdown, which clears the directory itself
  Entry* entry = find_locked(id.hex());
  // Not found or another generation: it evicted itself (host_stopped ran) or was replaced.
  if (entry == nullptr || entry->generation != generation) return;
  spdlog::error("actor {} {}: its host ended unexpectedly; the events it held were answered 503 "
                "and the next event gets a new instance", id.binding(), id.hex());
  if (!entry->stopping) {
    if (entry->in_lru) lru_.erase(entry->lru);
    std::lock_guard stripe_lock(stripe_of(id.hex()).mutex);
    entry->stopping = true;
    entry->in_lru = false;
  }
  retire_locked(*entry, dropped);
  // Counted once the entry can no longer route to the dead host (the hot path reads
  // `stopping` under the stripe lock): whoever sees the count sees a new host next.
  hosts_lost_.fetch_add(1, std::memory_order_release);
}

void RuntimeCore::retire_locked(Entry& entry, std::vector<Event>& dropped) {
  const ActorId id = entry.id;
  if (entry.closing) {
    entry.closing = false;
    --closing_;
  }
  sockets.instance_stopped(id.hex());
  if (!entry.admin_only) {
    // Bounded: one entry per actor ever evicted would grow without end. An actor forgotten
    // here shows no last event in the admin API until its next one.
    if (last_event_.size() >= max_remembered_last_events && !last_event_.contains(id.hex())) {
      last_event_.erase(last_event_.begin());
    }
    last_event_[id.hex()] = entry.last_used.load(std::memory_order_relaxed);
  }
  if (stopping_) {
    dropped = std::move(entry.waiting);
    erase_locked(entry);
    return;
  }
  if (entry.waiting.empty()) {
    erase_locked(entry);
    start_deferred_locked();
    return;
  }
  // Events came while it stopped: a new instance takes them, in the order they came.
  entry.admin_only = std::all_of(entry.waiting.begin(), entry.waiting.end(), [](const Event& event) {
    return std::holds_alternative<AdminEvent>(event.body);
  });
  if (!entry.admin_only && !room_for_live_locked()) {
    defer_locked(entry);
    start_deferred_locked();
    return;
  }
  start_locked(entry, entry.admin_only);
  if (entry.admin_only) evict_locked(entry, Why::admin);
  start_deferred_locked();
}

bool RuntimeCore::kill_host(const ActorId& id) {
  std::lock_guard lock(mutex_);
  Entry* entry = find_locked(id.hex());
  if (entry == nullptr || entry->stopping) return false;
  caf::anon_send_exit(entry->host, caf::exit_reason::kill);
  return true;
}

std::chrono::milliseconds RuntimeCore::shortest_idle_timeout() const {
  auto shortest = options.idle_timeout;
  for (const auto& [binding, timeout] : options.idle_timeout_by_binding) {
    if (timeout.count() > 0 && (shortest.count() <= 0 || timeout < shortest)) shortest = timeout;
  }
  return shortest;
}

std::size_t RuntimeCore::evict_idle() {
  if (shortest_idle_timeout().count() <= 0) return 0;
  std::lock_guard lock(mutex_);
  if (stopping_) return 0;
  // Every live instance is looked at (the list is only roughly in order of use): a pointer
  // and an atomic load each, under the structure lock, which the hot path does not take.
  auto now = options.clock->now();
  auto oldest_allowed = [&](const Entry& entry) -> std::optional<std::int64_t> {
    auto timeout = options.idle_timeout;
    if (!options.idle_timeout_by_binding.empty()) {
      if (auto it = options.idle_timeout_by_binding.find(entry.id.binding()); it != options.idle_timeout_by_binding.end()) {
        timeout = it->second;
      }
    }
    if (timeout.count() <= 0) return std::nullopt;  // never by time
    return (now - timeout).time_since_epoch().count();
  };
  std::vector<std::pair<Entry*, std::int64_t>> idle;
  for (Entry* entry : lru_) {
    auto limit = oldest_allowed(*entry);
    if (limit && entry->last_used.load(std::memory_order_relaxed) <= *limit) idle.emplace_back(entry, *limit);
  }
  std::size_t evicted = 0;
  for (auto [entry, limit] : idle) {
    {
      // Looked at again under its stripe lock: an event may have come since the scan.
      std::lock_guard stripe_lock(stripe_of(entry->id.hex()).mutex);
      if (entry->last_used.load(std::memory_order_relaxed) > limit) continue;
    }
    evict_locked(*entry, Why::idle);
    ++evicted;
  }
  return evicted;
}

void RuntimeCore::call_actor(const ActorId& target, std::string method, nlohmann::json args,
                             Stub::CallCallback done, TraceContext trace) {
  if (options.remote_calls && (!owned_epoch(target.shard()) || !admits(target.shard()))) {
    std::weak_ptr<RuntimeCore> weak = weak_from_this();
    auto here = [weak, target, trace](std::string m, nlohmann::json a, Stub::CallCallback d) {
      auto core = weak.lock();
      if (!core) return d(Error{Code::unavailable, "the runtime stopped"});
      core->call_here(target, std::move(m), std::move(a), std::move(d), trace);
    };
    options.remote_calls->call(target, std::move(method), std::move(args), std::move(done), std::move(here),
                               std::move(trace));
    return;
  }
  call_here(target, std::move(method), std::move(args), std::move(done), std::move(trace));
}

void RuntimeCore::call_here(const ActorId& target, std::string method, nlohmann::json args,
                            Stub::CallCallback done, TraceContext trace) {
  auto reply = replies_.add(std::make_shared<PendingReply>(std::move(done)));
  deliver(target, Event{CallEvent{std::move(method), std::move(args), std::move(trace)}, reply});
}

void RuntimeCore::tell_actor(const ActorId& target, std::string method, nlohmann::json args, TraceContext trace) {
  if (options.remote_calls && (!owned_epoch(target.shard()) || !admits(target.shard()))) {
    // The caller moved (or this node was fenced) while its call was out: the answer follows it.
    std::string what = target.binding() + " " + method;
    call_actor(
        target, std::move(method), std::move(args),
        [what = std::move(what)](Result<nlohmann::json> result) {
          if (!result) spdlog::warn("the answer to a call of {} was lost: {}", what, result.error().message);
        },
        std::move(trace));
    return;
  }
  deliver(target, Event{CallEvent{std::move(method), std::move(args), std::move(trace)}});
}

Result<std::size_t> RuntimeCore::replace_class(const std::string& binding, ActorFactory factory) {
  if (!factory) return fail(Code::invalid_argument, "binding " + binding + ": an empty factory");
  auto replacement = std::make_shared<const ActorFactory>(std::move(factory));
  std::lock_guard lock(mutex_);
  if (stopping_) return fail(Code::unavailable, "the runtime is shutting down");
  auto it = factories_.find(binding);
  if (it == factories_.end()) return fail(Code::not_found, "no actor class is bound to " + binding);
  it->second = std::move(replacement);  // every host started from here on
  std::vector<Entry*> victims;
  for (Entry* entry : lru_) {
    if (entry->id.binding() == binding) victims.push_back(entry);
  }
  // Each finishes the event it runs (the eviction is its next message), commits, and leaves;
  // its sockets stay open, and its next event starts a host of the new class.
  for (Entry* entry : victims) evict_locked(*entry, Why::forced);
  return victims.size();
}

std::size_t RuntimeCore::evict_shard(unsigned shard) {
  std::lock_guard lock(mutex_);
  if (stopping_) return 0;
  std::vector<Entry*> victims;
  for (Entry* entry : lru_) {
    if (entry->id.shard() == shard) victims.push_back(entry);
  }
  for (Entry* entry : victims) evict_locked(*entry, Why::forced);
  return victims.size();
}

bool RuntimeCore::evict(const ActorId& id) {
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  Entry* entry = find_locked(id.hex());
  if (entry == nullptr || entry->stopping) return false;
  evict_locked(*entry, Why::forced);
  return true;
}

void RuntimeCore::sweep_loop() {
  auto period = std::clamp<std::chrono::milliseconds>(shortest_idle_timeout() / 4,
                                                      std::chrono::milliseconds(10),
                                                      std::chrono::milliseconds(1000));
  std::unique_lock lock(sweep_mutex_);
  while (!sweep_cv_.wait_for(lock, period, [this] { return sweep_stop_; })) {
    lock.unlock();
    evict_idle();
    lock.lock();
  }
}

void RuntimeCore::shutdown() {
  std::vector<caf::actor> hosts;
  std::vector<Event> dropped;  // events waiting for a next host: answered 503 below
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& stripe : stripes_) {
      std::lock_guard stripe_lock(stripe.mutex);
      for (auto& [hex, entry] : stripe.entries) {
        if (entry.host) hosts.push_back(entry.host);  // a deferred entry may have none
        for (auto& event : entry.waiting) dropped.push_back(std::move(event));
        entry.waiting.clear();
        entry.stopping = true;  // off the hot path: what comes now is refused
        entry.in_lru = false;
      }
    }
    lru_.clear();
    deferred_.clear();
  }
  {
    std::lock_guard lock(sweep_mutex_);
    sweep_stop_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  {
    std::lock_guard lock(alarm_mutex_);
    alarm_stop_ = true;
  }
  alarm_cv_.notify_all();
  if (alarm_thread_.joinable()) alarm_thread_.join();
  dropped.clear();
  // Each host commits its open batch (releasing its answers) and closes its database.
  for (auto& host : hosts) caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
  hosts.clear();
  system_->await_all_actors_done();
  // Every host made its commits durable before it ended; what is left are syncs whose hosts
  // no longer wait for them.
  storage_.reset();
  alarms_->close();  // after writing what the last commits told it
  names_->close();
  if (options.replicator) route_replication(options.data_dir, nullptr);
  std::lock_guard lock(mutex_);
  for (auto& stripe : stripes_) {
    std::lock_guard stripe_lock(stripe.mutex);
    stripe.entries.clear();
  }
  entries_ = 0;
}

}  // namespace cairn::detail

namespace cairn {

std::uint64_t raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (limit.rlim_max == RLIM_INFINITY) {
      // An unlimited hard limit still stops at the kernel's per-process maximum.
      std::ifstream nr_open("/proc/sys/fs/nr_open");
      rlim_t kernel_max = 0;
      if (nr_open >> kernel_max && kernel_max > limit.rlim_cur) raised.rlim_cur = kernel_max;
    }
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

}  // namespace cairn
