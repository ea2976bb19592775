#include "cairn/cluster/membership.hpp"

#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cairn/actor_id.hpp"

namespace cairn::cluster {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

// The fence's clock: CLOCK_BOOTTIME, which, unlike CLOCK_MONOTONIC (steady_clock), goes on
// while the machine is suspended, as etcd's clock does for the lease.
struct Boot {
  using duration = std::chrono::nanoseconds;
  static std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
};

namespace {
constexpr unsigned shard_count = ActorId::shard_count;
constexpr std::size_t assign_batch = 64;  // puts per txn (etcd allows 128 operations)
constexpr std::size_t claim_batch = 32;   // two compares each
constexpr auto control_period = std::chrono::milliseconds(200);

std::string four_digits(unsigned shard) {
  char text[16];
  std::snprintf(text, sizeof text, "%04u", shard);
  return text;
}

template <class Duration>
std::int64_t ns(Duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); }

bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}
}  // namespace

struct Membership::Impl {
  MembershipOptions options;
  std::string nodes_prefix, coordinator_key, assign_prefix, shards_prefix, moves_prefix, disk_key, disks_prefix,
      replicas_prefix;

  mutable std::mutex mutex;  // the maps below: what this node has seen of etcd
  std::map<std::string, std::string> nodes;
  std::optional<std::string> coordinator;
  std::array<std::string, shard_count> assigned{};
  std::array<std::optional<ShardOwner>, shard_count> owners{};
  std::set<std::string> leaving;  // live nodes that said they are leaving
  std::map<std::string, std::int64_t> node_revision;  // nodes/<id>'s mod_revision
  std::optional<std::string> disk;  // this node's disks/<id>, as seen
  std::map<std::string, std::string> node_disk;      // the data directory each live node runs with
  std::map<std::string, std::string> recorded_disk;  // disks/<id>: where each node's shards are
  std::array<std::optional<ReplicaSet>, shard_count> replicas{};
  Takeover takeover;
  std::array<std::optional<ShardMove>, shard_count> moves{};
  std::array<std::int64_t, shard_count> move_revision{};  // the move key's mod_revision
  std::map<unsigned, std::int64_t> handing;  // shard -> the move revision its last hand_over() required
  std::function<void(unsigned)> on_change;
  Steady::time_point coordinator_seen{};  // when this node last became coordinator

  // What owns() needs, readable without the mutex (asked on every event): for each shard
  // this node owns as seen, the claim's epoch and lease (0 if not ours).
  std::array<std::atomic<std::int64_t>, shard_count> my_epoch{};
  std::array<std::atomic<std::int64_t>, shard_count> claim_lease{};
  std::atomic<std::int64_t> lease{0};
  std::atomic<std::int64_t> fence_at{0};  // Boot::now_ns(): fenced from then on
  std::atomic<bool> stopping{false};
  std::atomic<bool> leaving_now{false};
  std::atomic<bool> wrong_disk{false};
  Steady::time_point wrong_disk_logged{};  // this node: leave() was called (re-joins say so too)
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool kicked = false;

  std::atomic<std::uint64_t> renewals{0}, renewal_failures{0}, joins{0}, claims{0}, moves_asked{0}, takeovers{0};
  std::atomic<double> last_renew_seconds{0};

  std::unique_ptr<EtcdWatch> watch;
  std::thread lease_thread;
  std::thread control_thread;

  std::string shard_key(unsigned shard) const { return shards_prefix + four_digits(shard); }
  std::string assign_key(unsigned shard) const { return assign_prefix + four_digits(shard); }
  std::string move_key(unsigned shard) const { return moves_prefix + four_digits(shard); }
  std::string replicas_key(unsigned shard) const { return replicas_prefix + four_digits(shard); }
  static std::string replica_value(const std::string& follower, const std::vector<std::string>& in_sync) {
    return json{{"follower", follower}, {"in_sync", in_sync}}.dump();
  }
  std::string node_value() const {
    json value{{"advertise", options.advertise}};
    if (!options.data_id.empty()) value["disk"] = options.data_id;
    if (leaving_now.load()) value["leaving"] = true;
    return value.dump();
  }

  bool fenced() const {
    if (lease.load() == 0) return true;
    return options.self_fence ? Boot::now_ns() >= fence_at.load() : fence_at.load() == 0;
  }

  void kick() {
    {
      std::lock_guard lock(wake_mutex);
      kicked = true;
    }
    wake.notify_all();
  }
  // Sleeps up to `d`, or until kicked or stopping. False when stopping.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock lock(wake_mutex);
    wake.wait_for(lock, d, [this] { return kicked || stopping.load(); });
    kicked = false;
    return !stopping.load();
  }

  // Publishes what owns() reads; true if this node's own claim of `shard` changed (won,
  // lost, or at a new epoch): its instances there must go.
  bool publish_locked(unsigned shard) {
    const auto& owner = owners[shard];
    bool mine = owner && owner->node == options.node_id;
    auto epoch_now = mine ? owner->epoch : 0;
    bool changed = my_epoch[shard].exchange(epoch_now) != epoch_now;
    claim_lease[shard].store(mine ? owner->lease : 0);
    return changed;
  }

  std::optional<std::int64_t> epoch(unsigned shard) const {
    if (shard >= shard_count || fenced()) return std::nullopt;
    auto e = my_epoch[shard].load();
    // Under the current lease: a key of an abandoned lease (not yet expired) is not ours.
    if (e == 0 || claim_lease[shard].load() != lease.load()) return std::nullopt;
    return e;
  }

  // One key of the prefix changed (kv.value empty and `removed` for a deletion).
  // Returns the shard whose owner changed, if any. Holds `mutex`.
  std::optional<unsigned> apply_locked(const KeyValue& kv, bool removed) {
    const std::string& key = kv.key;
    auto shard_of = [](const std::string& suffix) -> std::optional<unsigned> {
      if (suffix.size() != 4 || suffix.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
      unsigned shard = static_cast<unsigned>(std::stoul(suffix));
      if (shard >= shard_count) return std::nullopt;
      return shard;
    };
    try {
      if (key.starts_with(nodes_prefix)) {
        auto id = key.substr(nodes_prefix.size());
        if (removed) {
          nodes.erase(id);
          leaving.erase(id);
          node_revision.erase(id);
          node_disk.erase(id);
        } else {
          auto value = json::parse(kv.value);
          nodes[id] = value.value("advertise", "");
          node_disk[id] = value.value("disk", "");
          node_revision[id] = kv.mod_revision;
          if (value.value("leaving", false)) {
            leaving.insert(id);
          } else {
            leaving.erase(id);
          }
        }
      } else if (key == coordinator_key) {
        if (removed) {
          coordinator.reset();
        } else {
          if (kv.value == options.node_id && coordinator != kv.value) coordinator_seen = Steady::now();
          coordinator = kv.value;
        }
      } else if (key.starts_with(disks_prefix)) {
        auto id = key.substr(disks_prefix.size());
        if (removed) {
          recorded_disk.erase(id);
        } else {
          recorded_disk[id] = kv.value;
        }
        if (key == disk_key) {
          if (removed) {
            disk.reset();
          } else {
            disk = kv.value;
          }
        }
      } else if (key.starts_with(replicas_prefix)) {
        if (auto shard = shard_of(key.substr(replicas_prefix.size()))) {
          // Never back to an older state than one already seen (record_in_sync and the
          // coordinator set theirs at once, before the watch brings it).
          if (replicas[*shard] && replicas[*shard]->revision > kv.mod_revision) return std::nullopt;
          if (removed) {
            replicas[*shard].reset();
          } else {
            auto value = json::parse(kv.value);
            ReplicaSet set;
            set.follower = value.value("follower", "");
            for (const auto& node : value.value("in_sync", json::array())) set.in_sync.push_back(node.get<std::string>());
            set.revision = kv.mod_revision;
            replicas[*shard] = std::move(set);
          }
        }
      } else if (key.starts_with(moves_prefix)) {
        if (auto shard = shard_of(key.substr(moves_prefix.size()))) {
          if (removed) {
            moves[*shard].reset();
          } else {
            auto value = json::parse(kv.value);
            moves[*shard] = ShardMove{*shard, value.value("from", ""), value.value("to", "")};
            move_revision[*shard] = kv.mod_revision;
          }
        }
      } else if (key.starts_with(assign_prefix)) {
        if (auto shard = shard_of(key.substr(assign_prefix.size()))) assigned[*shard] = removed ? "" : kv.value;
      } else if (key.starts_with(shards_prefix)) {
        if (auto shard = shard_of(key.substr(shards_prefix.size()))) {
          if (removed) {
            owners[*shard].reset();
          } else {
            auto value = json::parse(kv.value);
            owners[*shard] = ShardOwner{value.value("node", ""), value.value("advertise", ""), kv.mod_revision, kv.lease};
          }
          if (publish_locked(*shard)) return shard;
        }
      }
    } catch (const std::exception& e) {
      spdlog::warn("cluster: ignoring etcd key {}: {}", key, e.what());
    }
    return std::nullopt;
  }

  // Reads the whole prefix afresh; returns the revision read at.
  std::int64_t reload(EtcdClient& client) {
    for (;;) {
      auto read = client.range(options.prefix, prefix_end(options.prefix));
      if (read.ok()) {
        std::vector<unsigned> changed;
        {
          std::lock_guard lock(mutex);
          nodes.clear();
          leaving.clear();
          node_revision.clear();
          disk.reset();
          node_disk.clear();
          recorded_disk.clear();
          // A record this node wrote after the read was answered (a takeover's claim,
          // record_in_sync) is newer than what the read says: it stays (read back, the claim's
          // record would make the shard a takeover candidate again).
          auto written = replicas;
          replicas.fill(std::nullopt);
          moves.fill(std::nullopt);
          coordinator.reset();
          assigned.fill("");
          owners.fill(std::nullopt);
          for (const auto& kv : read.value().kvs) {
            if (auto shard = apply_locked(kv, false)) changed.push_back(*shard);
          }
          for (unsigned s = 0; s < shard_count; ++s) {
            const auto& mine = written[s];
            if (mine && mine->revision > read.value().revision &&
                (!replicas[s] || replicas[s]->revision < mine->revision)) {
              replicas[s] = mine;
            }
          }
          for (unsigned s = 0; s < shard_count; ++s) {  // those not read: no owner now
            if (publish_locked(s)) changed.push_back(s);
          }
        }
        notify(changed);
        kick();
        return read.value().revision;
      }
      if (stopping.load()) return 0;
      spdlog::warn("cluster: cannot read {} from etcd: {}", options.prefix, read.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  void notify(const std::vector<unsigned>& changed) {
    std::function<void(unsigned)> callback;
    {
      std::lock_guard lock(mutex);
      callback = on_change;
    }
    if (!callback) return;
    for (unsigned shard : changed) callback(shard);
  }

  void on_events(const std::vector<WatchEvent>& events) {
    std::vector<unsigned> changed;
    {
      std::lock_guard lock(mutex);
      for (const auto& event : events) {
        if (auto shard = apply_locked(event.kv, event.type == WatchEvent::Type::remove)) changed.push_back(*shard);
      }
    }
    notify(changed);
    kick();
  }

  // Grants a new lease and registers this node under it. False if etcd did not answer.
  bool join(EtcdClient& client) {
    if (auto old = lease.exchange(0); old != 0) (void)client.revoke(old);  // best effort
    auto sent = Boot::now_ns();
    auto granted = client.grant(options.lease_ttl);
    if (!granted.ok()) {
      spdlog::warn("cluster: cannot get a lease from etcd: {}", granted.error().message);
      return false;
    }
    auto id = granted.value().id;
    auto put = client.put(nodes_prefix + options.node_id, node_value(), id);
    if (!put.ok()) {
      spdlog::warn("cluster: cannot register node {}: {}", options.node_id, put.error().message);
      (void)client.revoke(id);
      return false;
    }
    if (granted.value().ttl < options.lease_ttl) {
      spdlog::warn("cluster: etcd granted a lease of {} s, not {} s", granted.value().ttl.count(), options.lease_ttl.count());
    }
    fence_at.store(sent + ns(granted.value().ttl - options.fence_margin));
    lease.store(id);
    joins.fetch_add(1);
    spdlog::info("cluster: node {} joined with lease {:x}", options.node_id, id);
    kick();
    return true;
  }

  void lease_loop() {
    EtcdClient client(options.etcd, options.etcd_timeout);
    while (!stopping.load()) {
      if (fenced()) {
        // Never renewed in time (or never joined): whatever this lease held is given up;
        // the node comes back with a new lease and claims its shards at new epochs.
        if (lease.load() != 0) spdlog::warn("cluster: node {} is fenced; joining again", options.node_id);
        if (!join(client)) pause(std::chrono::milliseconds(200));
        continue;
      }
      if (!pause(options.renew_every)) break;
      auto sent = Boot::now_ns();
      auto renewed = client.keepalive(lease.load());
      if (renewed.ok() && renewed.value()) {
        fence_at.store(sent + ns(*renewed.value() - options.fence_margin));
        renewals.fetch_add(1);
        last_renew_seconds.store(static_cast<double>(Boot::now_ns() - sent) / 1e9);
      } else {
        renewal_failures.fetch_add(1);
        if (renewed.ok()) {
          spdlog::warn("cluster: etcd says the lease of node {} is gone", options.node_id);
          fence_at.store(0);  // fenced now
        } else {
          spdlog::warn("cluster: cannot renew the lease of node {}: {}", options.node_id, renewed.error().message);
        }
      }
    }
    if (auto id = lease.exchange(0); id != 0) (void)client.revoke(id);
  }

  void control_loop() {
    EtcdClient client(options.etcd, options.etcd_timeout);
    auto revision = reload(client);
    if (stopping.load()) return;
    EtcdWatch::Callbacks callbacks;
    callbacks.on_events = [this](const std::vector<WatchEvent>& events) { on_events(events); };
    callbacks.on_reset = [this] {
      EtcdClient reader(options.etcd, options.etcd_timeout);
      return reload(reader);
    };
    watch = std::make_unique<EtcdWatch>(options.etcd, options.prefix, prefix_end(options.prefix), revision, callbacks);
    while (pause(control_period)) {
      auto my_lease = lease.load();
      if (my_lease == 0 || fenced()) continue;
      elect(client, my_lease);
      // Fresh shards go out in batches of assign_batch; at a cluster's birth all 1,024 are
      // given within one round rather than one batch per round.
      for (int batch = 0; batch < 16 && assign_fresh(client); ++batch) {
      }
      rebalance(client);
      for (int batch = 0; options.replicate && batch < 32 && assign_followers(client); ++batch) {
      }
      // Recorded as soon as it joins (a hand-off to it waits for that: disk_ok()).
      if (right_disk(client)) {
        claim_mine(client, my_lease);
        if (options.replicate) take_over(client, my_lease);
      }
    }
  }

  void elect(EtcdClient& client, std::int64_t my_lease) {
    {
      std::lock_guard lock(mutex);
      if (coordinator) return;
    }
    auto won = client.txn({Compare::absent(coordinator_key)}, {Operation::put(coordinator_key, options.node_id, my_lease)});
    if (won.ok() && won.value().succeeded) spdlog::info("cluster: node {} is the coordinator", options.node_id);
  }

  // The coordinator gives never-assigned shards to live nodes, the least loaded first. True
  // if it assigned a batch (there may be more).
  bool assign_fresh(EtcdClient& client) {
    std::vector<std::pair<unsigned, std::string>> plan;
    {
      std::lock_guard lock(mutex);
      if (coordinator != options.node_id || Steady::now() - coordinator_seen < options.settle) return false;
      if (nodes.empty()) return false;
      std::map<std::string, std::size_t> load;
      for (const auto& [id, url] : nodes) {
        if (!leaving.contains(id)) load[id] = 0;
      }
      if (load.empty()) return false;
      for (const auto& node : assigned) {
        if (auto it = load.find(node); it != load.end()) ++it->second;
      }
      for (unsigned s = 0; s < shard_count && plan.size() < assign_batch; ++s) {
        if (!assigned[s].empty()) continue;
        auto least = std::min_element(load.begin(), load.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        });
        plan.emplace_back(s, least->first);
        ++least->second;
      }
    }
    if (plan.empty()) return false;
    std::vector<Compare> compares{Compare::value_is(coordinator_key, options.node_id)};
    std::vector<Operation> puts;
    for (const auto& [shard, node] : plan) {
      compares.push_back(Compare::absent(assign_key(shard)));
      puts.push_back(Operation::put(assign_key(shard), node));
    }
    auto done = client.txn(compares, puts);
    if (!done.ok()) {
      spdlog::warn("cluster: cannot assign shards: {}", done.error().message);
      return false;
    }
    if (!done.value().succeeded) return false;
    // Seen here at once (the watch brings the same): the next batch plans from it.
    std::lock_guard lock(mutex);
    for (const auto& [shard, node] : plan) assigned[shard] = node;
    return true;
  }

  // The coordinator's rebalancing: drops moves nobody can make (their owner died or lost
  // the shard), then asks for moves from the nodes with the most shards assigned to those
  // with the fewest, until they differ by at most one or max_moves are in flight.
  void rebalance(EtcdClient& client) {
    std::vector<std::pair<unsigned, std::int64_t>> stale;
    std::vector<ShardMove> plan;
    {
      std::lock_guard lock(mutex);
      if (coordinator != options.node_id || Steady::now() - coordinator_seen < options.settle) return;
      std::map<std::string, long> load;
      for (const auto& [id, url] : nodes) {
        if (!leaving.contains(id)) load[id] = 0;
      }
      for (unsigned s = 0; s < shard_count; ++s) {
        if (auto it = load.find(assigned[s]); it != load.end()) ++it->second;
      }
      std::size_t in_flight = 0;
      for (unsigned s = 0; s < shard_count; ++s) {
        const auto& move = moves[s];
        if (!move) continue;
        bool makeable = nodes.contains(move->from) && owners[s] && owners[s]->node == move->from;
        if (!makeable) {
          stale.emplace_back(s, move_revision[s]);
          continue;
        }
        ++in_flight;
        if (auto it = load.find(move->from); it != load.end()) --it->second;
        if (auto it = load.find(move->to); it != load.end()) ++it->second;
      }
      while (load.size() >= 2 && in_flight + plan.size() < options.max_moves) {
        auto [low, high] = std::minmax_element(load.begin(), load.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        });
        if (high->second - low->second <= 1) break;
        std::optional<unsigned> pick;
        for (unsigned s = 0; s < shard_count && !pick; ++s) {
          bool planned = std::any_of(plan.begin(), plan.end(), [s](const ShardMove& m) { return m.shard == s; });
          if (assigned[s] == high->first && owners[s] && owners[s]->node == high->first && !moves[s] && !planned) {
            pick = s;
          }
        }
        if (!pick) break;  // its shards are not claimed yet: later
        plan.push_back(ShardMove{*pick, high->first, low->first});
        --high->second;
        ++low->second;
      }
    }
    for (const auto& [shard, revision] : stale) {
      (void)client.txn({Compare::modified_at(move_key(shard), revision)}, {Operation::remove(move_key(shard))});
    }
    if (!plan.empty() && ask_moves(client, plan, true)) {
      spdlog::info("cluster: rebalancing: {} shards asked to move", plan.size());
    }
  }

  // Writes `plan` as move keys (each only where none is; as the coordinator, only while it
  // is). True if written.
  bool ask_moves(EtcdClient& client, const std::vector<ShardMove>& plan, bool as_coordinator) {
    bool all = true;
    for (std::size_t at = 0; at < plan.size(); at += assign_batch / 2) {
      std::vector<Compare> compares;
      if (as_coordinator) compares.push_back(Compare::value_is(coordinator_key, options.node_id));
      std::vector<Operation> puts;
      for (std::size_t i = at; i < std::min(plan.size(), at + assign_batch / 2); ++i) {
        compares.push_back(Compare::absent(move_key(plan[i].shard)));
        puts.push_back(Operation::put(move_key(plan[i].shard), json{{"from", plan[i].from}, {"to", plan[i].to}}.dump()));
      }
      auto done = client.txn(compares, puts);
      if (done.ok() && done.value().succeeded) {
        moves_asked.fetch_add(puts.size());
      } else {
        all = false;
      }
    }
    return all;
  }

  // This node's data directory is the one its shards were given to (disks/<id>), recording
  // it if none is or no shard is assigned here. False: it must claim nothing.
  bool right_disk(EtcdClient& client) {
    if (options.data_id.empty()) return true;
    std::optional<std::string> recorded;
    bool any_assigned = false;
    {
      std::lock_guard lock(mutex);
      recorded = disk;
      any_assigned = std::any_of(assigned.begin(), assigned.end(), [&](const auto& n) { return n == options.node_id; });
    }
    if (recorded == options.data_id) {
      wrong_disk.store(false);
      return true;
    }
    if (recorded && any_assigned) {
      wrong_disk.store(true);
      if (Steady::now() - wrong_disk_logged > std::chrono::seconds(30)) {
        wrong_disk_logged = Steady::now();
        spdlog::error("cluster: node {}'s shards were given to data directory {}, and this one is {}: it claims none of "
                      "them, so none is served from an empty database. Start it with that directory; if it is lost "
                      "for good, delete etcd key {} to accept the loss of their data",
                      options.node_id, *recorded, options.data_id, disk_key);
      }
      return false;
    }
    // Nothing recorded, or nothing of this node's to lose: this directory is the one now.
    auto compare = recorded ? Compare::value_is(disk_key, *recorded) : Compare::absent(disk_key);
    std::vector<Compare> compares{compare};
    auto done = client.txn(compares, {Operation::put(disk_key, options.data_id)});
    if (done.ok() && done.value().succeeded) {
      std::lock_guard lock(mutex);
      disk = options.data_id;
      wrong_disk.store(false);
      return true;
    }
    return false;
  }

  // A live node other than `owner` that is not leaving, with the fewest shards followed
  // (`load`, counted by the caller); "" if there is none.
  std::string least_followed(const std::map<std::string, std::size_t>& load, const std::string& owner) const {
    std::string best;
    std::size_t fewest = 0;
    for (const auto& [id, count] : load) {
      if (id == owner) continue;
      if (best.empty() || count < fewest) {
        best = id;
        fewest = count;
      }
    }
    return best;
  }

  // The coordinator gives a follower to each assigned shard whose owner is live and whose
  // follower is missing, is the owner, died, or leaves (in_sync: the owner alone). True if it
  // gave a batch (there may be more).
  bool assign_followers(EtcdClient& client) {
    struct Plan {
      unsigned shard;
      std::string owner, follower;
      std::int64_t revision;  // of the record replaced (0: none)
    };
    std::vector<Plan> plan;
    {
      std::lock_guard lock(mutex);
      if (coordinator != options.node_id || Steady::now() - coordinator_seen < options.settle) return false;
      std::map<std::string, std::size_t> load;
      for (const auto& [id, url] : nodes) {
        if (!leaving.contains(id)) load[id] = 0;
      }
      if (load.size() < 2) return false;
      for (const auto& set : replicas) {
        if (!set) continue;
        if (auto it = load.find(set->follower); it != load.end()) ++it->second;
      }
      for (unsigned s = 0; s < shard_count && plan.size() < claim_batch; ++s) {  // two compares each
        const auto& owner = assigned[s];
        if (owner.empty() || !nodes.contains(owner)) continue;  // unassigned, or its owner is down
        const auto& set = replicas[s];
        if (set && !set->follower.empty() && set->follower != owner && load.contains(set->follower)) continue;
        auto follower = least_followed(load, owner);
        if (follower.empty()) continue;
        ++load[follower];
        plan.push_back({s, owner, follower, set ? set->revision : 0});
      }
    }
    if (plan.empty()) return false;
    auto give = [&](const std::vector<Plan>& group) -> Result<bool> {
      std::vector<Compare> compares{Compare::value_is(coordinator_key, options.node_id)};
      std::vector<Operation> puts;
      for (const auto& p : group) {
        compares.push_back(Compare::value_is(assign_key(p.shard), p.owner));
        compares.push_back(p.revision == 0 ? Compare::absent(replicas_key(p.shard))
                                           : Compare::modified_at(replicas_key(p.shard), p.revision));
        puts.push_back(Operation::put(replicas_key(p.shard), replica_value(p.follower, {p.owner})));
      }
      auto done = client.txn(compares, puts);
      if (!done.ok()) return done.error();
      if (done.value().succeeded) {
        // Seen here at once (the watch brings the same): the next batch plans from it.
        std::lock_guard lock(mutex);
        for (const auto& p : group) {
          auto& seen = replicas[p.shard];
          if (!seen || seen->revision < done.value().revision) {
            seen = ReplicaSet{p.follower, {p.owner}, done.value().revision};
          }
        }
      }
      return done.value().succeeded;
    };
    auto given = give(plan);
    if (!given.ok()) {
      spdlog::warn("cluster: cannot assign followers: {}", given.error().message);
      return false;
    }
    if (given.value()) return true;
    // Something changed under the plan: each shard on its own, and where one still fails,
    // what this node has seen of it is read afresh (it may lag, or be wrong), so that one
    // shard never holds up the others' followers.
    bool any = false;
    for (const auto& p : plan) {
      auto one = give({p});
      if (!one.ok()) return any;
      if (one.value()) {
        any = true;
        continue;
      }
      auto record = client.range(replicas_key(p.shard));
      auto assignment = client.range(assign_key(p.shard));
      if (!record.ok() || !assignment.ok()) return any;
      std::lock_guard lock(mutex);
      for (const auto& kv : record.value().kvs) apply_locked(kv, false);
      if (record.value().kvs.empty()) replicas[p.shard].reset();
      assigned[p.shard] = assignment.value().kvs.empty() ? "" : assignment.value().kvs.front().value;
      spdlog::info("cluster: shard {}'s replica record was read afresh", p.shard);
    }
    return any;
  }

  // Failover: this node, the in-sync follower of shards whose owner is gone, takes them over.
  void take_over(EtcdClient& client, std::int64_t my_lease) {
    struct Candidate {
      unsigned shard;
      std::string owner;
      std::int64_t revision;
      std::string record;  // the replica record's value, as seen
    };
    std::vector<Candidate> candidates;
    Takeover hooks;
    {
      std::lock_guard lock(mutex);
      hooks = takeover;
      if (!hooks.prepare || !hooks.finish) return;
      for (unsigned s = 0; s < shard_count; ++s) {
        const auto& set = replicas[s];
        const auto& owner = assigned[s];
        if (owners[s] || owner.empty() || owner == options.node_id || !set) continue;
        if (set->follower != options.node_id || !set->counts(options.node_id)) continue;
        // Its owner is not live, or is live with another data directory than its shards' (its
        // disk was lost): it will not claim the shard itself.
        bool owner_gone = !nodes.contains(owner);
        if (!owner_gone) {
          auto running = node_disk.find(owner);
          auto recorded = recorded_disk.find(owner);
          owner_gone = running != node_disk.end() && !running->second.empty() && recorded != recorded_disk.end() &&
                       running->second != recorded->second;
        }
        if (owner_gone) candidates.push_back({s, owner, set->revision, replica_value(set->follower, set->in_sync)});
      }
    }
    std::string value = json{{"node", options.node_id}, {"advertise", options.advertise}}.dump();
    // One transaction per group of shards (each three compares and three puts, within etcd's
    // 128 operations), then one per shard of a group that failed as a whole.
    // The claim's outcome: its epoch, nullopt if refused; `unknown` if etcd never said
    // (the node is stopping): the copies then stay promoted and nothing is finished.
    bool unknown = false;
    auto claim = [&](const std::vector<Candidate>& group) -> std::optional<std::int64_t> {
      std::vector<Compare> compares;
      if (!options.data_id.empty()) compares.push_back(Compare::value_is(disk_key, options.data_id));
      std::vector<Operation> ops;
      for (const auto& c : group) {
        compares.push_back(Compare::absent(shard_key(c.shard)));
        compares.push_back(Compare::value_is(assign_key(c.shard), c.owner));
        compares.push_back(Compare::modified_at(replicas_key(c.shard), c.revision));
        ops.push_back(Operation::put(assign_key(c.shard), options.node_id));
        ops.push_back(Operation::put(shard_key(c.shard), value, my_lease));
        ops.push_back(Operation::put(replicas_key(c.shard), replica_value("", {options.node_id})));
      }
      auto done = client.txn(compares, ops);
      if (done.ok()) {
        if (done.value().succeeded) return done.value().revision;
        return std::nullopt;
      }
      // Unknown: the transaction may still be applied. It is made impossible by rewriting the
      // replica records it compares (unchanged values, new revisions); if that finds them
      // changed, the claim was applied or something else changed them: the claim key says.
      for (; !stopping.load(); std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
        std::vector<Compare> seen;
        std::vector<Operation> same;
        for (const auto& c : group) {
          seen.push_back(Compare::modified_at(replicas_key(c.shard), c.revision));
          same.push_back(Operation::put(replicas_key(c.shard), c.record));
        }
        auto bumped = client.txn(seen, same);
        if (!bumped.ok()) continue;
        if (bumped.value().succeeded) return std::nullopt;
        auto read = client.range(shard_key(group.front().shard));
        if (!read.ok()) continue;
        const auto& kvs = read.value().kvs;
        if (!kvs.empty() && kvs.front().lease == my_lease) return kvs.front().mod_revision;
        return std::nullopt;
      }
      unknown = true;
      return std::nullopt;
    };
    auto finish = [&](const Candidate& c, std::optional<std::int64_t> epoch) {
      if (epoch) {
        // The claim's replica record, seen at once: until the watch brings it, the next round
        // would find the shard ownerless with this node its follower, and take it over again
        // (putting aside the copy it now serves). Never older than one already seen.
        {
          std::lock_guard lock(mutex);
          auto& seen = replicas[c.shard];
          if (!seen || seen->revision < *epoch) seen = ReplicaSet{"", {options.node_id}, *epoch};
        }
        claims.fetch_add(1);
        takeovers.fetch_add(1);
        spdlog::warn("cluster: node {} took shard {} over at epoch {}", options.node_id, c.shard, *epoch);
      }
      try {
        hooks.finish(c.shard, epoch);
      } catch (const std::exception& e) {
        spdlog::error("cluster: shard {}: {}", c.shard, e.what());
      }
    };
    constexpr std::size_t group_size = 16;
    for (std::size_t at = 0; at < candidates.size(); at += group_size) {
      if (stopping.load() || fenced() || lease.load() != my_lease) return;
      std::vector<Candidate> group;
      for (std::size_t i = at; i < std::min(candidates.size(), at + group_size); ++i) {
        const auto& c = candidates[i];
        spdlog::warn("cluster: shard {}'s owner {} is gone: node {}, its in-sync follower, takes it over", c.shard,
                     c.owner, options.node_id);
        bool prepared = false;
        try {
          prepared = hooks.prepare(c.shard, c.revision);
        } catch (const std::exception& e) {
          spdlog::error("cluster: cannot take shard {} over: {}", c.shard, e.what());
        }
        if (prepared) group.push_back(c);
      }
      if (group.empty()) continue;
      auto epoch = claim(group);
      if (unknown) return;
      if (epoch) {
        for (const auto& c : group) finish(c, epoch);
        continue;
      }
      for (const auto& c : group) {
        auto one = group.size() == 1 ? std::nullopt : claim({c});
        if (unknown) return;
        finish(c, one);
      }
    }
  }

  // Claims the shards assigned to this node that nobody holds.
  void claim_mine(EtcdClient& client, std::int64_t my_lease) {
    std::vector<unsigned> mine;
    {
      std::lock_guard lock(mutex);
      // A leaving node still claims what is assigned to it (a shard handed to it just now,
      // or all of them after a re-join): only an owner can hand a shard on.
      for (unsigned s = 0; s < shard_count; ++s) {
        if (assigned[s] == options.node_id && !owners[s]) mine.push_back(s);
      }
    }
    if (mine.empty()) return;
    std::string value = json{{"node", options.node_id}, {"advertise", options.advertise}}.dump();
    auto claim = [&](const std::vector<unsigned>& shards) {
      std::vector<Compare> compares;
      std::vector<Operation> puts;
      // The data directory too: one replaced meanwhile claims nothing.
      if (!options.data_id.empty()) compares.push_back(Compare::value_is(disk_key, options.data_id));
      for (unsigned s : shards) {
        compares.push_back(Compare::absent(shard_key(s)));
        compares.push_back(Compare::value_is(assign_key(s), options.node_id));
        puts.push_back(Operation::put(shard_key(s), value, my_lease));
      }
      auto done = client.txn(compares, puts);
      if (done.ok() && done.value().succeeded) claims.fetch_add(shards.size());
      return done.ok() && done.value().succeeded;
    };
    for (std::size_t at = 0; at < mine.size() && !stopping.load(); at += claim_batch) {
      std::vector<unsigned> batch(mine.begin() + static_cast<std::ptrdiff_t>(at),
                                  mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), at + claim_batch)));
      if (fenced() || lease.load() != my_lease) return;
      if (!claim(batch) && batch.size() > 1) {
        for (unsigned s : batch) (void)claim({s});  // one is taken (an old key not yet expired)
      }
    }
  }
};

Membership::Membership(MembershipOptions options) : impl_(std::make_shared<Impl>()) {
  if (options.etcd.empty()) throw std::invalid_argument("cluster: no etcd endpoint");
  if (!valid_node_id(options.node_id)) {
    throw std::invalid_argument("cluster: node id '" + options.node_id + "' must be 1 to 64 of [A-Za-z0-9_.-]");
  }
  if (!options.advertise.starts_with("http://")) {
    throw std::invalid_argument("cluster: advertise '" + options.advertise + "' must be http://HOST:PORT");
  }
  if (options.lease_ttl < std::chrono::seconds(2)) throw std::invalid_argument("cluster: lease TTL below etcd's 2 s");
  if (options.fence_margin < std::chrono::milliseconds(1000) ||
      options.renew_every + options.fence_margin >= options.lease_ttl) {
    throw std::invalid_argument("cluster: need fence margin >= 1 s and renew interval + margin < lease TTL");
  }
  if (options.prefix.empty() || options.prefix.back() != '/') options.prefix += '/';
  auto& impl = *impl_;
  impl.options = std::move(options);
  impl.nodes_prefix = impl.options.prefix + "nodes/";
  impl.coordinator_key = impl.options.prefix + "coordinator";
  impl.assign_prefix = impl.options.prefix + "assign/";
  impl.shards_prefix = impl.options.prefix + "shards/";
  impl.moves_prefix = impl.options.prefix + "moves/";
  impl.disks_prefix = impl.options.prefix + "disks/";
  impl.disk_key = impl.disks_prefix + impl.options.node_id;
  impl.replicas_prefix = impl.options.prefix + "replicas/";
  impl.lease_thread = std::thread([&impl] { impl.lease_loop(); });
  impl.control_thread = std::thread([&impl] { impl.control_loop(); });
}

Membership::~Membership() { stop(); }

void Membership::stop() {
  {
    std::lock_guard lock(impl_->wake_mutex);  // no waiter can miss it
    impl_->stopping.store(true);
  }
  impl_->wake.notify_all();
  if (impl_->control_thread.joinable()) impl_->control_thread.join();
  impl_->watch.reset();  // after the control thread, which made it
  if (impl_->lease_thread.joinable()) impl_->lease_thread.join();
}

const MembershipOptions& Membership::options() const { return impl_->options; }
bool Membership::ready() const { return !impl_->fenced(); }
bool Membership::fenced() const { return impl_->fenced(); }

std::optional<ShardOwner> Membership::owner(unsigned shard) const {
  if (shard >= shard_count) return std::nullopt;
  std::lock_guard lock(impl_->mutex);
  return impl_->owners[shard];
}

bool Membership::owns(unsigned shard, std::int64_t* epoch) const {
  auto owned = impl_->epoch(shard);
  if (owned && epoch != nullptr) *epoch = *owned;
  return owned.has_value();
}

std::optional<std::int64_t> Membership::epoch(unsigned shard) const { return impl_->epoch(shard); }

std::vector<unsigned> Membership::owned() const {
  std::vector<unsigned> out;
  for (unsigned s = 0; s < shard_count; ++s) {
    if (owns(s)) out.push_back(s);
  }
  return out;
}

std::map<std::string, std::string> Membership::nodes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->nodes;
}

std::optional<std::string> Membership::coordinator() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->coordinator;
}

bool Membership::disk_ok() const {
  if (impl_->options.data_id.empty()) return true;
  std::lock_guard lock(impl_->mutex);
  return impl_->disk == impl_->options.data_id;
}

std::vector<std::string> Membership::leaving_nodes() const {
  std::lock_guard lock(impl_->mutex);
  return {impl_->leaving.begin(), impl_->leaving.end()};
}

std::vector<ShardMove> Membership::moves() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<ShardMove> out;
  for (const auto& move : impl_->moves) {
    if (move) out.push_back(*move);
  }
  return out;
}

std::vector<ShardMove> Membership::moves_to_make() {
  auto& impl = *impl_;
  std::vector<ShardMove> out;
  std::vector<std::pair<unsigned, std::int64_t>> dropped;
  {
    std::lock_guard lock(impl.mutex);
    for (unsigned s = 0; s < shard_count; ++s) {
      const auto& move = impl.moves[s];
      if (!move || move->from != impl.options.node_id || !impl.epoch(s)) continue;
      if (move->to == impl.options.node_id || !impl.nodes.contains(move->to) || impl.leaving.contains(move->to)) {
        dropped.emplace_back(s, impl.move_revision[s]);
      } else {
        out.push_back(*move);
      }
    }
  }
  if (!dropped.empty()) {
    EtcdClient client(impl.options.etcd, impl.options.etcd_timeout);
    for (const auto& [shard, revision] : dropped) {
      spdlog::warn("cluster: dropping the move of shard {}: its target is gone or leaving", shard);
      (void)client.txn({Compare::modified_at(impl.move_key(shard), revision)}, {Operation::remove(impl.move_key(shard))});
    }
  }
  return out;
}

Result<std::size_t> Membership::leave() {
  auto& impl = *impl_;
  impl.leaving_now.store(true);
  EtcdClient client(impl.options.etcd, impl.options.etcd_timeout);
  auto my_lease = impl.lease.load();
  if (my_lease == 0 || impl.fenced()) return Error{Code::unavailable, "this node holds no lease now"};
  auto said = client.put(impl.nodes_prefix + impl.options.node_id, impl.node_value(), my_lease);
  if (!said.ok()) return said.error();
  std::vector<ShardMove> plan;
  {
    std::lock_guard lock(impl.mutex);
    std::map<std::string, std::size_t> load;
    for (const auto& [id, url] : impl.nodes) {
      if (id != impl.options.node_id && !impl.leaving.contains(id)) load[id] = 0;
    }
    if (load.empty()) return std::size_t{0};
    for (const auto& node : impl.assigned) {
      if (auto it = load.find(node); it != load.end()) ++it->second;
    }
    for (unsigned s = 0; s < shard_count; ++s) {
      if (!impl.epoch(s)) continue;
      if (impl.moves[s]) continue;  // already asked (by the coordinator): it stands
      // Replicated: to the follower the record counts in sync, which promotes its copy
      // (nothing is copied); the coordinator spread the followers evenly.
      const auto& set = impl.replicas[s];
      if (impl.options.replicate && set && !set->follower.empty() && set->counts(set->follower)) {
        if (auto it = load.find(set->follower); it != load.end()) {
          plan.push_back(ShardMove{s, impl.options.node_id, it->first});
          ++it->second;
          continue;
        }
      }
      auto least = std::min_element(load.begin(), load.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      });
      plan.push_back(ShardMove{s, impl.options.node_id, least->first});
      ++least->second;
    }
  }
  if (!impl.ask_moves(client, plan, false)) {
    return Error{Code::unavailable, "etcd did not take every move this node asked for"};
  }
  spdlog::info("cluster: node {} is leaving: {} shards asked to move", impl.options.node_id, plan.size());
  return plan.size();
}

Result<bool> Membership::hand_over(const std::vector<unsigned>& shards, const std::string& to) {
  auto& impl = *impl_;
  // Two compares and four operations per shard: within etcd's 128 operations per transaction.
  if (shards.empty() || shards.size() > 24) return Error{Code::invalid_argument, "hand over 1 to 24 shards at a time"};
  std::vector<Compare> compares;
  std::vector<Operation> ops;
  std::vector<std::pair<unsigned, std::int64_t>> required;  // shard -> its move's revision
  {
    // The target as seen, still there and not leaving (its key unchanged since).
    std::lock_guard lock(impl.mutex);
    auto seen = impl.node_revision.find(to);
    if (seen == impl.node_revision.end() || impl.leaving.contains(to)) return false;
    compares.push_back(Compare::modified_at(impl.nodes_prefix + to, seen->second));
  }
  for (unsigned s : shards) {
    auto epoch = impl.epoch(s);
    if (!epoch) return false;
    std::int64_t move_revision = 0;
    {
      std::lock_guard lock(impl.mutex);
      const auto& move = impl.moves[s];
      if (!move || move->from != impl.options.node_id || move->to != to) return false;
      move_revision = impl.move_revision[s];
    }
    required.emplace_back(s, move_revision);
    compares.push_back(Compare::modified_at(impl.move_key(s), move_revision));
    compares.push_back(Compare::modified_at(impl.shard_key(s), *epoch));
    compares.push_back(Compare::value_is(impl.assign_key(s), impl.options.node_id));
    ops.push_back(Operation::put(impl.assign_key(s), to));
    ops.push_back(Operation::remove(impl.shard_key(s)));
    ops.push_back(Operation::remove(impl.move_key(s)));
    // The new owner gets a follower from the coordinator (its own copy is what it was sent).
    ops.push_back(Operation::remove(impl.replicas_key(s)));
  }
  {
    std::lock_guard lock(impl.mutex);
    for (const auto& [s, revision] : required) impl.handing[s] = revision;
  }
  EtcdClient client(impl.options.etcd, impl.options.etcd_timeout);
  auto done = client.txn(compares, ops);
  if (!done.ok()) return done.error();
  if (done.value().succeeded) {
    // Not this node's from now on, whatever the watch has not shown yet: nothing may run
    // here under the old epoch after its files are gone.
    std::lock_guard lock(impl.mutex);
    for (unsigned s : shards) {
      impl.owners[s].reset();
      impl.assigned[s] = to;
      impl.publish_locked(s);
    }
  }
  return done.value().succeeded;
}

Result<bool> Membership::settle_hand_over(const std::vector<unsigned>& shards) {
  auto& impl = *impl_;
  std::vector<Compare> compares;
  std::vector<Operation> ops;
  {
    std::lock_guard lock(impl.mutex);
    for (unsigned s : shards) {
      // The revision the last hand_over() required, or else the move's as seen.
      std::int64_t revision = 0;
      if (auto seen = impl.handing.find(s); seen != impl.handing.end()) {
        revision = seen->second;
      } else if (impl.moves[s]) {
        revision = impl.move_revision[s];
      } else {
        return false;  // no move of it seen: nothing to delete, nothing could go through
      }
      compares.push_back(Compare::modified_at(impl.move_key(s), revision));
      ops.push_back(Operation::remove(impl.move_key(s)));
    }
  }
  EtcdClient client(impl.options.etcd, impl.options.etcd_timeout);
  auto done = client.txn(compares, ops);
  if (!done.ok()) return done.error();
  return done.value().succeeded;
}

Result<std::string> Membership::assignment(unsigned shard) const {
  if (shard >= shard_count) return Error{Code::invalid_argument, "no such shard"};
  EtcdClient client(impl_->options.etcd, impl_->options.etcd_timeout);
  auto read = client.range(impl_->assign_key(shard));  // etcd's reads are linearizable
  if (!read.ok()) return read.error();
  return read.value().kvs.empty() ? std::string() : read.value().kvs.front().value;
}

Result<std::string> Membership::disk_of(const std::string& node) const {
  EtcdClient client(impl_->options.etcd, impl_->options.etcd_timeout);
  auto read = client.range(impl_->disks_prefix + node);
  if (!read.ok()) return read.error();
  return read.value().kvs.empty() ? std::string() : read.value().kvs.front().value;
}

Result<std::string> Membership::move_target(unsigned shard) const {
  if (shard >= shard_count) return Error{Code::invalid_argument, "no such shard"};
  EtcdClient client(impl_->options.etcd, impl_->options.etcd_timeout);
  auto read = client.range(impl_->move_key(shard));
  if (!read.ok()) return read.error();
  if (read.value().kvs.empty()) return std::string();
  auto value = json::parse(read.value().kvs.front().value, nullptr, false);
  // A move key this node cannot read counts as a move to it: the caller keeps its files.
  if (!value.is_object() || !value.contains("to") || !value["to"].is_string()) return impl_->options.node_id;
  return value["to"].get<std::string>();
}

std::size_t Membership::assigned_here() const {
  std::lock_guard lock(impl_->mutex);
  return static_cast<std::size_t>(
      std::count(impl_->assigned.begin(), impl_->assigned.end(), impl_->options.node_id));
}

std::size_t Membership::other_nodes() const {
  std::lock_guard lock(impl_->mutex);
  std::size_t count = 0;
  for (const auto& [id, url] : impl_->nodes) {
    if (id != impl_->options.node_id && !impl_->leaving.contains(id)) ++count;
  }
  return count;
}

void Membership::drop_moves(const std::vector<unsigned>& shards) {
  auto& impl = *impl_;
  std::vector<std::pair<unsigned, std::int64_t>> dropped;
  {
    std::lock_guard lock(impl.mutex);
    for (unsigned s : shards) {
      if (s < shard_count && impl.moves[s] && impl.moves[s]->from == impl.options.node_id) {
        dropped.emplace_back(s, impl.move_revision[s]);
      }
    }
  }
  EtcdClient client(impl.options.etcd, impl.options.etcd_timeout);
  for (const auto& [shard, revision] : dropped) {
    (void)client.txn({Compare::modified_at(impl.move_key(shard), revision)}, {Operation::remove(impl.move_key(shard))});
  }
}

void Membership::on_owner_change(std::function<void(unsigned)> callback) {
  std::lock_guard lock(impl_->mutex);
  impl_->on_change = std::move(callback);
}

Membership::Stats Membership::stats() const {
  Stats out;
  out.renewals = impl_->renewals.load();
  out.renewal_failures = impl_->renewal_failures.load();
  out.joins = impl_->joins.load();
  out.claims = impl_->claims.load();
  out.moves_asked = impl_->moves_asked.load();
  out.takeovers = impl_->takeovers.load();
  out.wrong_disk = impl_->wrong_disk.load();
  out.last_renew_seconds = impl_->last_renew_seconds.load();
  return out;
}

std::optional<ReplicaSet> Membership::replicas(unsigned shard) const {
  if (shard >= shard_count) return std::nullopt;
  std::lock_guard lock(impl_->mutex);
  return impl_->replicas[shard];
}

std::optional<FollowerView> Membership::follower(unsigned shard) const {
  if (!impl_->epoch(shard)) return std::nullopt;
  std::lock_guard lock(impl_->mutex);
  const auto& set = impl_->replicas[shard];
  if (!set || set->follower.empty() || set->follower == impl_->options.node_id) return std::nullopt;
  FollowerView view;
  view.node = set->follower;
  view.in_sync = set->counts(set->follower);
  if (auto it = impl_->nodes.find(set->follower); it != impl_->nodes.end()) {
    view.address = it->second.starts_with("http://") ? it->second.substr(7) : it->second;
  }
  return view;
}

Result<bool> Membership::record_in_sync(unsigned shard, const std::string& follower, bool counted) {
  auto& impl = *impl_;
  if (shard >= shard_count) return Error{Code::invalid_argument, "no such shard"};
  EtcdClient client(impl.options.etcd, impl.options.etcd_timeout);
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto epoch = impl.epoch(shard);
    if (!epoch) return false;
    auto read = client.range(impl.replicas_key(shard));
    if (!read.ok()) return read.error();
    if (read.value().kvs.empty()) return !counted;  // no record: nobody is counted
    const auto& kv = read.value().kvs.front();
    auto value = json::parse(kv.value, nullptr, false);
    if (value.is_discarded() || !value.is_object()) return Error{Code::internal, "a malformed replica record"};
    std::string current = value.value("follower", "");
    std::vector<std::string> in_sync;
    for (const auto& node : value.value("in_sync", json::array())) {
      if (node.is_string()) in_sync.push_back(node.get<std::string>());
    }
    bool is_counted = std::find(in_sync.begin(), in_sync.end(), follower) != in_sync.end();
    if (current != follower) return !counted && !is_counted;
    if (is_counted == counted) return true;
    std::vector<std::string> next{impl.options.node_id};
    if (counted) next.push_back(follower);
    auto done = client.txn({Compare::modified_at(impl.shard_key(shard), *epoch),
                            Compare::modified_at(impl.replicas_key(shard), kv.mod_revision)},
                           {Operation::put(impl.replicas_key(shard), Impl::replica_value(follower, next))});
    if (!done.ok()) return done.error();
    if (done.value().succeeded) {
      std::lock_guard lock(impl.mutex);
      auto& seen = impl.replicas[shard];
      if (!seen || seen->revision < done.value().revision) seen = ReplicaSet{follower, next, done.value().revision};
      return true;
    }
  }
  return Error{Code::unavailable, "the replica record of shard " + std::to_string(shard) + " kept changing"};
}

void Membership::on_takeover(Takeover takeover) {
  std::lock_guard lock(impl_->mutex);
  impl_->takeover = std::move(takeover);
}

}  // namespace cairn::cluster
