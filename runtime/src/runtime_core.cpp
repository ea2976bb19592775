// RuntimeCore: directory of hosts, lazy spawn, eviction (idle, LRU, forced), data layout,
// shutdown.
#include "runtime_core.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <caf/all.hpp>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "cairn/limits.hpp"
#include "host.hpp"

namespace cairn::detail {
namespace {
// The last event times of evicted actors kept for the admin API (~100 bytes each).
constexpr std::size_t max_remembered_last_events = 100'000;

// Regular files under `dir` and their bytes, by first path component (binding or _cairn).
std::map<std::string, std::uint64_t> bytes_by_directory(const std::filesystem::path& dir) {
  std::map<std::string, std::uint64_t> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (!it->is_regular_file(size_ec)) continue;
    auto size = it->file_size(size_ec);
    if (size_ec) continue;
    auto relative = it->path().lexically_relative(dir);
    if (relative.begin() == relative.end()) continue;
    out[relative.begin()->string()] += size;
  }
  return out;
}

}  // namespace

RuntimeCore::RuntimeCore(Registry registry_in, RuntimeOptions options_in)
    : registry(std::move(registry_in)), options(std::move(options_in)) {
  if (options.max_live_instances == 0) {
    throw std::invalid_argument("max_live_instances must be at least 1");
  }
  if (options.max_queued_events == 0) {
    throw std::invalid_argument("max_queued_events must be at least 1");
  }
  if (!options.clock) throw std::invalid_argument("RuntimeOptions::clock must not be null");
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
  names_ = std::make_unique<NamesIndex>(options.data_dir / "_cairn" / "names.sqlite", options.durability);
  sync_path(options.data_dir);
  // The databases' bytes are counted once here, then kept as running totals that hosts
  // update (database_bytes_changed): a /metrics scrape never walks the data directory.
  for (const auto& binding : registry.bindings()) database_bytes_[binding] = 0;
  for (const auto& [dir, bytes] : bytes_by_directory(options.data_dir)) {
    if (auto it = database_bytes_.find(dir); it != database_bytes_.end()) {
      it->second.store(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
    }
  }
  system_ = std::make_unique<caf::actor_system>(config_);
  if (options.idle_timeout.count() > 0) sweeper_ = std::thread([this] { sweep_loop(); });
  alarm_thread_ = std::thread([this] { alarm_loop(); });
}

RuntimeCore::~RuntimeCore() { shutdown(); }

std::filesystem::path RuntimeCore::database_path(const ActorId& id) {
  auto dir = options.data_dir / id.binding();
  {
    std::lock_guard lock(mutex_);
    if (binding_dirs_.insert(id.binding()).second) {
      std::filesystem::create_directories(dir);
      sync_path(options.data_dir);
    }
  }
  return database_file(id);
}

void RuntimeCore::start_locked(Directory::iterator it, const ActorFactory& factory, bool for_admin) {
  // A host started only for an operator is not a live instance: it does not count against
  // max_live_instances and pushes no live one out (it leaves right after its operation; at
  // most one per admin worker is open at a time).
  if (!for_admin) make_room_locked();
  Entry& entry = it->second;
  entry.generation = next_generation_++;
  entry.host = system_->spawn<Host>(this, entry.id, &factory, entry.generation);
  // A host that ends without evicting itself (CAF ended it: an exception that escaped every
  // catch, an exit message) must not leave its entry pointing at a dead mailbox. Runs on the
  // host's thread as it ends, never under this lock (a new host is not ended before it runs).
  std::weak_ptr<RuntimeCore> weak = weak_from_this();
  entry.host->attach_functor([weak, id = entry.id, generation = entry.generation] {
    if (auto core = weak.lock()) core->host_gone(id, generation);
  });
  entry.stopping = false;
  entry.last_used = options.clock->now();
  entry.in_lru = !for_admin;
  if (entry.in_lru) {
    lru_.push_front(it->first);
    entry.lru = lru_.begin();
  }
}

bool RuntimeCore::deliver(const ActorId& id, Event event) {
  // An event sent to a host that has just died is destroyed inside the send, and its reply
  // answers from its destructor: that must happen after the lock is released (the callback
  // may call back into the runtime, as a Context::call reply does). Declared before the lock.
  std::shared_ptr<PendingReply> keep = event.reply;
  auto* socket = std::get_if<SocketEvent>(&event.body);
  SocketCredit* credit = socket != nullptr ? socket->credit.get() : nullptr;
  std::unique_lock lock(mutex_);
  if (stopping_) {
    lock.unlock();
    if (event.reply) event.reply->fail(Error{Code::unavailable, "the runtime is shutting down"});
    return false;
  }
  auto it = directory_.find(id.hex());
  if (it == directory_.end()) {
    const ActorFactory* factory = registry.find(id.binding());
    if (factory == nullptr) {
      lock.unlock();
      if (event.reply) {
        event.reply->fail(Error{Code::not_found, "no actor class is bound to " + id.binding()});
      }
      return false;
    }
    it = directory_.emplace(id.hex(), Entry{id, {}, 0, false, {}, {}, {}}).first;
    start_locked(it, *factory);
    it->second.admin_only = false;
  } else if ((event.reply || credit) && it->second.queued->load(std::memory_order_relaxed) >=
                                           options.max_queued_events) {
    lock.unlock();
    overloaded_.fetch_add(1, std::memory_order_relaxed);
    if (event.reply) {
      event.reply->fail(Error{Code::overloaded,
                              "actor " + id.binding() + " '" + id.name().substr(0, 64) +
                                  "' has " + std::to_string(options.max_queued_events) +
                                  " requests waiting (--max-queued-events); try again shortly"});
    }
    return false;
  } else if (it->second.stopping) {
    // The old host still has the database open: the event goes to the next one.
    if (event.reply) event.reply->count_in(it->second.queued);
    if (credit) credit->count_in(it->second.queued);
    it->second.waiting.push_back(std::move(event));
    return true;
  } else {
    it->second.last_used = options.clock->now();
    it->second.admin_only = false;
    if (it->second.in_lru) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    } else {  // started for an operator, now serving: it counts from here on
      make_room_locked();
      lru_.push_front(it->first);
      it->second.lru = lru_.begin();
      it->second.in_lru = true;
    }
  }
  if (credit) credit->count_in(it->second.queued);
  if (event.reply) {
    event.reply->count_in(it->second.queued);
    std::size_t depth = it->second.queued->load(std::memory_order_relaxed);
    std::size_t peak = queued_max_.load(std::memory_order_relaxed);
    while (depth > peak && !queued_max_.compare_exchange_weak(peak, depth, std::memory_order_relaxed)) {
    }
  }
  // Sent under the lock, so no event can reach a host after its eviction order.
  caf::anon_send(it->second.host, std::move(event));
  return true;
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
  bool sent = deliver(route.owner->id, Event{SocketEvent{socket, SocketEvent::Kind::message,
                                                         std::move(message), binary, 0, std::move(credit)},
                                             nullptr});
  if (!sent) {
    const auto& id = route.owner->id;
    route.entry->sink->close(limits::overloaded_close_code,
                             "actor " + id.binding() + " has " + std::to_string(options.max_queued_events) +
                                 " events waiting (--max-queued-events); try again later");
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
  deliver(route.owner->id, Event{std::move(event), nullptr});
}

void RuntimeCore::evict_locked(Entry& entry, Why why) {
  entry.stopping = true;
  if (entry.in_lru) lru_.erase(entry.lru);
  entry.in_lru = false;
  if (why != Why::admin) evictions_.fetch_add(1, std::memory_order_relaxed);
  if (why == Why::idle) evictions_idle_.fetch_add(1, std::memory_order_relaxed);
  if (why == Why::lru) evictions_lru_.fetch_add(1, std::memory_order_relaxed);
  if (why == Why::forced) evictions_forced_.fetch_add(1, std::memory_order_relaxed);
  // Queued behind every event already sent: they run first, then the host closes.
  caf::anon_send(entry.host, evict_atom::value, entry.generation);
}

void RuntimeCore::make_room_locked() {
  while (lru_.size() >= options.max_live_instances) evict_locked(directory_.at(lru_.back()), Why::lru);
}

void RuntimeCore::host_stopped(const ActorId& id, std::uint64_t generation) {
  std::vector<Event> dropped;  // answered (503) outside the lock
  std::vector<std::shared_ptr<PendingReply>> keep;  // see deliver()
  std::unique_lock lock(mutex_);
  auto it = directory_.find(id.hex());
  if (it == directory_.end() || it->second.generation != generation || !it->second.stopping) return;
  retire_locked(it, dropped, keep);
}

void RuntimeCore::host_gone(const ActorId& id, std::uint64_t generation) {
  std::vector<Event> dropped;
  std::vector<std::shared_ptr<PendingReply>> keep;
  std::unique_lock lock(mutex_);
  if (stopping_) return;  // every host ends at shutdown, which clears the directory itself
  auto it = directory_.find(id.hex());
  // Not found or another generation: it evicted itself (host_stopped ran) or was replaced.
  if (it == directory_.end() || it->second.generation != generation) return;
  hosts_lost_.fetch_add(1, std::memory_order_relaxed);
  spdlog::error("actor {} {}: its host ended unexpectedly; the events it held were answered 503 "
                "and the next event gets a new instance", id.binding(), id.hex());
  if (!it->second.stopping) {
    it->second.stopping = true;
    if (it->second.in_lru) lru_.erase(it->second.lru);
    it->second.in_lru = false;
  }
  retire_locked(it, dropped, keep);
}

void RuntimeCore::retire_locked(Directory::iterator it, std::vector<Event>& dropped,
                                std::vector<std::shared_ptr<PendingReply>>& keep) {
  const ActorId id = it->second.id;
  sockets.instance_stopped(it->first);
  if (!it->second.admin_only) {
    // Bounded: one entry per actor ever evicted would grow without end. An actor forgotten
    // here shows no last event in the admin API until its next one.
    if (last_event_.size() >= max_remembered_last_events && !last_event_.contains(it->first)) {
      last_event_.erase(last_event_.begin());
    }
    last_event_[it->first] = it->second.last_used.time_since_epoch().count();
  }
  if (stopping_) {
    dropped = std::move(it->second.waiting);
    directory_.erase(it);
    return;
  }
  if (it->second.waiting.empty()) {
    directory_.erase(it);
    return;
  }
  // Events came while it stopped: a new instance takes them, in the order they came.
  const ActorFactory* factory = registry.find(id.binding());
  auto waiting = std::exchange(it->second.waiting, {});
  it->second.admin_only = std::all_of(waiting.begin(), waiting.end(), [](const Event& event) {
    return std::holds_alternative<AdminEvent>(event.body);
  });
  start_locked(it, *factory, it->second.admin_only);
  for (auto& event : waiting) {
    if (event.reply) keep.push_back(event.reply);
    caf::anon_send(it->second.host, std::move(event));
  }
  if (it->second.admin_only) evict_locked(it->second, Why::admin);
}

bool RuntimeCore::kill_host(const ActorId& id) {
  std::lock_guard lock(mutex_);
  auto it = directory_.find(id.hex());
  if (it == directory_.end() || it->second.stopping) return false;
  caf::anon_send_exit(it->second.host, caf::exit_reason::kill);
  return true;
}

std::size_t RuntimeCore::evict_idle() {
  if (options.idle_timeout.count() <= 0) return 0;
  std::lock_guard lock(mutex_);
  if (stopping_) return 0;
  auto now = options.clock->now();
  std::size_t evicted = 0;
  while (!lru_.empty()) {
    Entry& oldest = directory_.at(lru_.back());
    if (now - oldest.last_used < options.idle_timeout) break;
    evict_locked(oldest, Why::idle);
    ++evicted;
  }
  return evicted;
}

bool RuntimeCore::evict(const ActorId& id) {
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  auto it = directory_.find(id.hex());
  if (it == directory_.end() || it->second.stopping) return false;
  evict_locked(it->second, Why::forced);
  return true;
}

Result<nlohmann::json> RuntimeCore::admin(const ActorId& id, AdminEvent::Op op, std::string text,
                                          std::size_t max_rows, bool create, AdminFacts* facts) {
  auto done = std::make_shared<std::promise<Result<nlohmann::json>>>();
  auto answer = done->get_future();
  bool was_live = false;
  std::optional<std::int64_t> last_event;
  // Looked up before the directory lock: the names index may be busy with an fsync or a
  // scan, and the directory serves every request.
  bool named = create || names_->contains(id.hex());
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fail(Code::unavailable, "the runtime is shutting down");
    const ActorFactory* factory = registry.find(id.binding());
    if (factory == nullptr) return fail(Code::not_found, "no actor class is bound to '" + id.binding() + "'");
    auto it = directory_.find(id.hex());
    // A deleted actor may still have a host that is leaving: the files decide.
    if (!named) {
      std::error_code ec;
      if (!std::filesystem::exists(database_file(id), ec)) {
        return fail(Code::not_found, "actor " + id.binding() + " '" + id.name().substr(0, 64) +
                                         "' does not exist (no database)");
      }
    }
    if (it != directory_.end() && !it->second.admin_only) {
      last_event = it->second.last_used.time_since_epoch().count();
    } else if (auto known = last_event_.find(id.hex()); known != last_event_.end()) {
      last_event = known->second;
    }
    Event event{AdminEvent{op, std::move(text), max_rows, done}, nullptr};
    if (it == directory_.end()) {
      it = directory_.emplace(id.hex(), Entry{id, {}, 0, false, {}, {}, {}}).first;
      start_locked(it, *factory, /*for_admin=*/true);
    } else if (it->second.stopping) {
      it->second.waiting.push_back(std::move(event));  // for its next host, as any event
    } else {
      was_live = !it->second.admin_only;
    }
    if (!it->second.stopping) {
      caf::anon_send(it->second.host, std::move(event));
      // Spawned for the operator only, or deleting the actor: it leaves memory right after
      // (a request after the delete gets a fresh instance with a fresh database).
      if (!was_live || op == AdminEvent::Op::remove) evict_locked(it->second, Why::admin);
    }
  }
  if (answer.wait_for(limits::admin_operation_timeout) != std::future_status::ready) {
    return fail(Code::timeout, "the actor did not run the operation within " +
                                   std::to_string(limits::admin_operation_timeout.count()) + " s");
  }
  Result<nlohmann::json> result = fail(Code::unavailable, "the actor stopped before answering");
  try {
    result = answer.get();
  } catch (const std::future_error&) {
    return result;  // the event died with its host (shutdown)
  }
  if (facts != nullptr) {
    facts->live = was_live;
    if (last_event) {
      facts->last_event_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration{*last_event}).count();
    }
  }
  return result;
}

std::vector<std::pair<std::string, std::size_t>> RuntimeCore::live_by_binding() const {
  std::map<std::string, std::size_t> counts;
  std::lock_guard lock(mutex_);
  for (const auto& [hex, entry] : directory_) {
    if (!entry.stopping && !entry.admin_only) ++counts[entry.id.binding()];
  }
  return {counts.begin(), counts.end()};
}

bool RuntimeCore::is_live(const std::string& hex) const {
  std::lock_guard lock(mutex_);
  auto it = directory_.find(hex);
  return it != directory_.end() && !it->second.stopping && !it->second.admin_only;
}

void RuntimeCore::alarms_committed(const ActorId& id, std::optional<std::int64_t> soonest) {
  if (alarms_->after_commit(id, soonest)) {
    {
      std::lock_guard lock(alarm_mutex_);
      alarm_kick_ = true;
    }
    alarm_cv_.notify_one();
  }
}

std::size_t RuntimeCore::fire_due_alarms() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return 0;
  }
  auto now = options.clock->now();
  auto retry_at = now + std::chrono::duration_cast<Clock::duration>(limits::alarm_dispatch_lease);
  std::size_t fired = 0;
  for (;;) {
    auto due = alarms_->take_due(now.time_since_epoch().count(), retry_at.time_since_epoch().count(),
                                 1024);
    for (const auto& id : due) deliver(id, Event{AlarmEvent{}, nullptr});
    fired += due.size();
    if (due.size() < 1024) return fired;
  }
}

void RuntimeCore::alarm_loop() {
  std::unique_lock lock(alarm_mutex_);
  while (!alarm_stop_) {
    lock.unlock();
    fire_due_alarms();
    alarms_->flush();
    auto wait = std::chrono::milliseconds(1000);
    if (auto next = alarms_->next_due()) {
      auto until = Clock::time_point{Clock::duration{*next}} - options.clock->now();
      wait = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(until),
                        std::chrono::milliseconds(0), wait);
    }
    lock.lock();
    alarm_cv_.wait_for(lock, wait, [this] { return alarm_stop_ || alarm_kick_; });
    alarm_kick_ = false;
  }
}

RuntimeStats RuntimeCore::stats() const {
  RuntimeStats out;
  {
    std::lock_guard lock(mutex_);
    out.live_instances = lru_.size();
    out.stopping_instances = directory_.size() - lru_.size();
  }
  out.websockets = sockets.size();
  out.instances_started = instances_started_.load(std::memory_order_relaxed);
  out.evictions = evictions_.load(std::memory_order_relaxed);
  out.alarms_run = alarms_run_.load(std::memory_order_relaxed);
  out.commits = commits_.load(std::memory_order_relaxed);
  out.committed_events = committed_events_.load(std::memory_order_relaxed);
  out.overloaded = overloaded_.load(std::memory_order_relaxed);
  out.actors_with_alarms = alarms_->size();
  return out;
}

namespace {

std::size_t open_descriptors() {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n > 0 ? n - 1 : 0;  // less the one the iteration itself holds
}

double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

void RuntimeCore::write_metrics(metrics::TextWriter& out) const {
  using metrics::Labels;
  auto counter = [&](const char* name, const char* help, double value) {
    out.family(name, "counter", help);
    out.sample(name, {}, value);
  };
  auto gauge = [&](const char* name, const char* help, double value) {
    out.family(name, "gauge", help);
    out.sample(name, {}, value);
  };
  auto relaxed = [](const std::atomic<std::uint64_t>& v) { return static_cast<double>(v.load(std::memory_order_relaxed)); };

  std::map<std::string, std::size_t> live, hibernated, sockets_by_binding;
  std::size_t queue_now = 0;
  std::set<std::string> live_hex;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [hex, entry] : directory_) {
      if (!entry.stopping && !entry.admin_only) {
        ++live[entry.id.binding()];
        live_hex.insert(hex);
      }
      queue_now = std::max(queue_now, entry.queued->load(std::memory_order_relaxed));
    }
  }
  for (const auto& [owner, count] : sockets.owners()) {
    sockets_by_binding[owner.binding()] += count;
    if (!live_hex.contains(owner.hex())) ++hibernated[owner.binding()];
  }
  std::map<std::string, std::size_t> known;
  for (auto& [binding, count] : names_->counts()) known[binding] = count;

  out.family("cairn_instances", "gauge",
             "Actor instances by state: live (in memory) or hibernated (evicted, with open WebSockets)");
  for (const auto& binding : registry.bindings()) {
    out.sample("cairn_instances", {{"binding", binding}, {"state", "live"}}, static_cast<double>(live[binding]));
    out.sample("cairn_instances", {{"binding", binding}, {"state", "hibernated"}},
               static_cast<double>(hibernated[binding]));
  }
  out.family("cairn_actors", "gauge", "Actors with a database, by binding (the names index)");
  for (const auto& binding : registry.bindings()) {
    out.sample("cairn_actors", {{"binding", binding}}, static_cast<double>(known[binding]));
  }
  out.family("cairn_websockets", "gauge", "Open WebSockets accepted by actors, hibernated or not");
  for (const auto& binding : registry.bindings()) {
    out.sample("cairn_websockets", {{"binding", binding}}, static_cast<double>(sockets_by_binding[binding]));
  }
  counter("cairn_instances_started_total", "Actor objects constructed", relaxed(instances_started_));
  counter("cairn_hosts_lost_total", "Actor hosts that ended without evicting themselves (replaced)",
          relaxed(hosts_lost_));
  out.family("cairn_evictions_total", "counter", "Instances evicted from memory, by reason");
  out.sample("cairn_evictions_total", {{"reason", "idle"}}, relaxed(evictions_idle_));
  out.sample("cairn_evictions_total", {{"reason", "lru"}}, relaxed(evictions_lru_));
  out.sample("cairn_evictions_total", {{"reason", "forced"}}, relaxed(evictions_forced_));
  counter("cairn_events_total", "Actor events committed", relaxed(committed_events_));
  counter("cairn_commits_total", "Transactions committed (group commit: several events each)",
          relaxed(commits_));
  out.family("cairn_commit_duration_seconds", "histogram", "Time of one commit, its fsync included");
  out.histogram("cairn_commit_duration_seconds", {}, commit_seconds_.snapshot());
  out.family("cairn_events_per_commit", "histogram", "Events that shared one commit");
  out.histogram("cairn_events_per_commit", {}, events_per_commit_.snapshot());
  gauge("cairn_actor_queue_depth_max", "The most requests waiting for one actor now",
        static_cast<double>(queue_now));
  gauge("cairn_actor_queue_depth_peak", "The most requests that have waited for one actor since start",
        static_cast<double>(queued_max_.load(std::memory_order_relaxed)));
  counter("cairn_requests_overloaded_total", "Requests refused because an actor's queue was full",
          relaxed(overloaded_));
  counter("cairn_alarms_run_total", "on_alarm calls, retries included", relaxed(alarms_run_));
  gauge("cairn_alarms_pending", "Actors with a pending alarm", static_cast<double>(alarms_->size()));
  out.family("cairn_alarm_lateness_seconds", "histogram", "How long after its due time an alarm ran");
  out.histogram("cairn_alarm_lateness_seconds", {}, alarm_lateness_.snapshot());
  out.family("cairn_database_bytes", "gauge",
             "Bytes of the data directory's files, by binding (_cairn: the runtime's indexes)");
  for (const auto& [binding, bytes] : database_bytes_) {
    out.sample("cairn_database_bytes", {{"binding", binding}},
               static_cast<double>(std::max<std::int64_t>(0, bytes.load(std::memory_order_relaxed))));
  }
  // The runtime's own two indexes: a handful of stats, not a walk.
  std::uint64_t index_bytes = 0;
  for (const char* file : {"alarms.sqlite", "alarms.sqlite-wal", "names.sqlite", "names.sqlite-wal"}) {
    std::error_code ec;
    auto size = std::filesystem::file_size(options.data_dir / "_cairn" / file, ec);
    if (!ec) index_bytes += size;
  }
  out.sample("cairn_database_bytes", {{"binding", "_cairn"}}, static_cast<double>(index_bytes));
  gauge("process_open_fds", "Open file descriptors", static_cast<double>(open_descriptors()));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    gauge("process_max_fds", "The soft limit on open file descriptors", static_cast<double>(limit.rlim_cur));
  }
  gauge("process_resident_memory_bytes", "Resident memory", resident_bytes());
}

void RuntimeCore::sweep_loop() {
  auto period = std::clamp<std::chrono::milliseconds>(options.idle_timeout / 4,
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
    for (auto& [hex, entry] : directory_) {
      hosts.push_back(entry.host);
      for (auto& event : entry.waiting) dropped.push_back(std::move(event));
      entry.waiting.clear();
    }
    lru_.clear();
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
  alarms_->close();  // after writing what the last commits told it
  names_->close();
  std::lock_guard lock(mutex_);
  directory_.clear();
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
