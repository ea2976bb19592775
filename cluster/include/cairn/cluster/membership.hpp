// Membership: this node's place in a cluster whose membership and shard ownership live in
// etcd (DESIGN, "Many machines"). Keys, under `prefix`:
//   nodes/<id>        {"advertise": URL}            under the node's lease: it is alive
//   coordinator       <node id>                     under the coordinator's lease (election)
//   assign/NNNN       <node id>                     which node should own shard NNNN (written
//                                                   by the coordinator; never under a lease)
//   shards/NNNN       {"node": id, "advertise": URL} under the owner's lease: it owns the
//                                                   shard; the key's mod_revision is the
//                                                   shard's epoch
// The coordinator gives each never-assigned shard to a live node (spread evenly, a bounded
// number per transaction); a node claims the shards assigned to it by compare-and-set
// (the key absent and the assignment its own). A shard whose owner died keeps its assignment:
// no other node claims it (its data is on the dead node's disk) until that node is back.
//
// Self-fencing: the node renews its lease every `renew_every`; a renewal sent at time t keeps
// the lease until t + TTL at the earliest. fenced() turns true at t + TTL - fence_margin
// (monotonic clock) when no later renewal succeeded: from then on the node must release no
// output for any shard. A fenced node abandons its lease and joins again with a new one,
// claiming its shards with new epochs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/cluster/etcd.hpp"
#include "cairn/ownership.hpp"

namespace cairn::cluster {

struct MembershipOptions {
  std::vector<Endpoint> etcd;
  std::string prefix = "cairn/";  // one cluster per prefix
  std::string node_id;            // [A-Za-z0-9_.-], 1 to 64 bytes
  std::string advertise;          // where other nodes reach this one: http://HOST:PORT
  std::chrono::seconds lease_ttl{5};
  std::chrono::milliseconds renew_every{1000};
  std::chrono::milliseconds fence_margin{1000};
  std::chrono::milliseconds etcd_timeout{1000};
  // The coordinator waits this long after its election before assigning fresh shards, so
  // that nodes started together share them.
  std::chrono::milliseconds settle{1000};
};

struct ShardOwner {
  std::string node;
  std::string advertise;
  std::int64_t epoch = 0;  // the owner key's mod_revision
  std::int64_t lease = 0;
};

class Membership final : public Ownership {
 public:
  // Checks the options (std::invalid_argument naming the bad one) and starts: the node
  // registers, renews, watches, claims what is assigned to it. Returns at once; ready()
  // says when the first registration succeeded.
  explicit Membership(MembershipOptions options);
  // Leaves: revokes the lease (its shard keys go with it; assignments stay).
  ~Membership() override;
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  const MembershipOptions& options() const;
  bool ready() const;
  // True when this node must release no output: its lease may be about to expire, or is gone.
  bool fenced() const;
  // Who owns `shard` as far as this node has seen (none: unowned now).
  std::optional<ShardOwner> owner(unsigned shard) const;
  // True if this node owns `shard` now and is not fenced; `epoch` is set to the claim's epoch.
  bool owns(unsigned shard, std::int64_t* epoch = nullptr) const;
  // Ownership (RuntimeOptions::ownership): owns(shard)'s epoch. Lock-free.
  std::optional<std::int64_t> epoch(unsigned shard) const override;
  // The shards this node owns now (empty while fenced).
  std::vector<unsigned> owned() const;
  // Live nodes (id -> advertise URL), as seen.
  std::map<std::string, std::string> nodes() const;
  std::optional<std::string> coordinator() const;
  // Called (on the watch's thread) when a shard's owner changed as seen here.
  void on_owner_change(std::function<void(unsigned shard)> callback);

  struct Stats {
    std::uint64_t renewals = 0;
    std::uint64_t renewal_failures = 0;
    std::uint64_t joins = 0;         // leases granted (1 + re-joins after fencing)
    std::uint64_t claims = 0;        // shards claimed
    double last_renew_seconds = 0;   // latency of the last successful renewal
  };
  Stats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::cluster
