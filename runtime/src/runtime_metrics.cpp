// RuntimeCore: statistics and Prometheus metrics of the runtime and the process.
#include "runtime_core.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "cairn/limits.hpp"

namespace cairn::detail {

RuntimeStats RuntimeCore::stats() const {
  RuntimeStats out;
  {
    std::lock_guard lock(mutex_);
    out.live_instances = lru_.size();
    out.stopping_instances = entries_ - lru_.size();
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
    for_each_locked([&](const std::string& hex, const Entry& entry) {
      if (!entry.stopping && !entry.admin_only) {
        ++live[entry.id.binding()];
        live_hex.insert(hex);
      }
      queue_now = std::max(queue_now, entry.queued->load(std::memory_order_relaxed));
    });
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

}  // namespace cairn::detail
