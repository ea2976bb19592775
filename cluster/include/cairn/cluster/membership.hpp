// Membership: this node's place in a cluster whose membership and shard ownership live in
// etcd (DESIGN, "Many machines"). Keys, under `prefix`:
//   nodes/<id>        {"advertise": URL}            under the node's lease: it is alive
//   coordinator       <node id>                     under the coordinator's lease (election)
//   assign/NNNN       <node id>                     which node should own shard NNNN (written
//                                                   by the coordinator; never under a lease)
//   shards/NNNN       {"node": id, "advertise": URL} under the owner's lease: it owns the
//                                                   shard; the key's mod_revision is the
//                                                   shard's epoch
//   disks/<id>        <data directory identity>     the data directory the node's shards
//                                                   are in (never under a lease)
//   replicas/NNNN     {"follower": id, "in_sync": [ids]}  (replication on) the shard's
//                                                   follower, chosen by the coordinator, and
//                                                   the nodes that hold every write the owner
//                                                   acknowledged; never under a lease
//   moves/NNNN        {"from": id, "to": id}        a hand-off asked of the owner `from`: by
//                                                   the coordinator (rebalancing a join) or by
//                                                   `from` itself (leaving); never under a lease
// Hand-off (DESIGN, "Many machines"): the owner copies the shard's files to `to` and then,
// in one transaction that holds only if it still owns the shard at its epoch, points the
// assignment at `to`, deletes its own claim and the move; `to` then claims it as any
// assigned shard. The assignment is the promise that the node has the shard's data.
// A node that leaves says so in its node key ("leaving": true): it gets no shard, and it
// asks for its own shards to be moved to the others; with replication, each shard whose
// follower is counted in sync to that follower, which promotes its copy instead of taking one
// (gateway/src/handoff.hpp).
// A node claims only with the data directory its shards were given to (disks/<id>): one that
// comes back with another (an empty disk) claims nothing while shards are assigned to it,
// so it never serves them from empty databases; with none assigned it records its new one.
// Rebalancing: the coordinator moves shards from the nodes with the most assigned to those
// with the fewest (a node that joins has none), at most `max_moves` in flight at a time.
// The coordinator gives each never-assigned shard to a live node (spread evenly, a bounded
// number per transaction); a node claims the shards assigned to it by compare-and-set
// (the key absent and the assignment its own). A shard whose owner died keeps its assignment:
// no other node claims it (its data is on the dead node's disk) until that node is back.
//
// Replication (MembershipOptions::replicate, cairn/replication.hpp): the coordinator gives
// each assigned shard whose owner is live a follower (a live node other than the owner, not
// leaving, the fewest followed first) with in_sync = [owner]; it replaces a follower that died
// or leaves the same way. The owner adds the follower to in_sync once it has seeded it and
// the follower holds everything acknowledged so far, and drops it before acknowledging
// anything the follower has not confirmed (record_in_sync, compare-and-set at the owner's
// epoch). Failover: a shard whose claim is gone (its owner's lease expired) and whose owner is
// not live, or came back with another data directory, is taken over by its follower if that
// follower is in sync: it makes its copy its own (Takeover::prepare), then in one transaction
// that holds only if the claim is still absent, the assignment and the replica record
// unchanged, it assigns the shard to itself, claims it and records in_sync = [itself]. A
// shard's hand-off deletes its replica record (the coordinator gives the new owner a
// follower).
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
  // Rebalancing's bound: moves in flight at a time (cluster-wide, as the coordinator sees).
  std::size_t max_moves = 32;
  // The identity of this node's data directory (data_identity() in the gateway); empty: not
  // checked (tests of membership alone).
  std::string data_id;
  // Replication: as coordinator, give every shard a follower; as a follower, take over the
  // shards whose owner is gone (on_takeover must be set for that).
  bool replicate = false;
  // Tests only (CAIRN_TEST_UNSAFE_NO_SELF_FENCE=1 in the server's environment): the node does
  // not fence itself when its renewals fail, only once etcd says its lease is gone. This is
  // what a node whose clock or scheduler misbehaves would do; the partition test runs it to
  // show that a follower's fence alone keeps such an owner from making anything durable.
  bool self_fence = true;
};

// A shard's replica record (replicas/NNNN).
struct ReplicaSet {
  std::string follower;              // "" for none
  std::vector<std::string> in_sync;  // the nodes that hold every acknowledged write
  std::int64_t revision = 0;         // the key's mod_revision
  bool counts(const std::string& node) const {
    for (const auto& n : in_sync) {
      if (n == node) return true;
    }
    return false;
  }
};

// What the owner of a shard needs to replicate it.
struct FollowerView {
  std::string node;
  std::string address;  // its internal listener, HOST:PORT ("" if it is not live)
  bool in_sync = false;
};

// A follower taking a shard over (failover).
struct Takeover {
  // Makes this node's copy of `shard` its own data (before the claim): false if it cannot
  // (the copy is not whole), and the shard is not claimed. `record` is the replica record's
  // revision the claim compares: a copy promoted for the same record by an earlier try (the
  // node stopped before the claim's outcome was known) is taken as it is.
  std::function<bool(unsigned shard, std::int64_t record)> prepare;
  // After prepare(): the claim was made at `epoch`, or (nullopt) was refused and prepare()
  // must be undone.
  std::function<void(unsigned shard, std::optional<std::int64_t> epoch)> finish;
};

struct ShardMove {
  unsigned shard = 0;
  std::string from;
  std::string to;
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
  // The same, keeping the object: its threads are stopped (no callback runs after this
  // returns) while calls made from other threads (epoch()) stay safe until it is destroyed.
  // Idempotent; not concurrent with itself.
  void stop();
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
  // True once etcd records this node's data directory as the one its shards are in (a
  // hand-off to it waits for this).
  bool disk_ok() const;
  // Live nodes that are leaving (they get no shards).
  std::vector<std::string> leaving_nodes() const;
  // Every move asked and not yet done or dropped, as seen.
  std::vector<ShardMove> moves() const;
  // The moves asked of this node that it can make now: it owns the shard and the target is
  // live and not leaving. Moves it cannot make (target gone) are dropped in etcd.
  std::vector<ShardMove> moves_to_make();
  // Says in etcd that this node is leaving, and asks for each shard it owns to be moved to
  // the live nodes that stay (the fewest-assigned first). Returns how many moves it asked
  // for (0: no other node to take them). Blocks on etcd.
  Result<std::size_t> leave();
  // The hand-off's commit: for each of `shards` (at most 24) that this node still owns at
  // the epoch it has seen, the assignment goes to `to` and this node's claim and the move
  // are deleted, all in one transaction that also requires `to`'s node key as seen (alive,
  // not leaving); false if anything no longer holds (nothing was changed). On success the
  // shards stop being this node's at once (epoch() says so before this returns). Each shard's
  // move to `to` must be there as seen (its key unchanged): settle_hand_over() relies on it.
  // Code::timeout: the outcome is unknown (settle_hand_over()). Blocks on etcd.
  Result<bool> hand_over(const std::vector<unsigned>& shards, const std::string& to);
  // After a hand_over() of `shards` whose outcome is unknown: deletes their moves, all or
  // none, if they are still the ones it required. true: done, and the hand-over can never go
  // through now (a transaction still in flight finds a move changed); false: a move was gone
  // or changed, so it went through or never will: assignment() then says which, for good.
  Result<bool> settle_hand_over(const std::vector<unsigned>& shards);
  // Who shard `shard` is assigned to, read from etcd now (linearizable; "" for nobody): how
  // a hand-off whose answer was lost learns whether it happened.
  Result<std::string> assignment(unsigned shard) const;
  // The data directory identity node `node` recorded (disks/<node>), read from etcd now; ""
  // for none. A directory that comes back under another node id still holds its old id's
  // shards: they are its data, not stale copies.
  Result<std::string> disk_of(const std::string& node) const;
  // The node a move of `shard` asked for is bound to, read from etcd now ("" if no move is
  // asked). Blocks on etcd.
  Result<std::string> move_target(unsigned shard) const;
  // Shards assigned to this node, as seen (claimed or not).
  std::size_t assigned_here() const;
  // Live nodes other than this one that are not leaving.
  std::size_t other_nodes() const;
  // Drops the moves of `shards` asked of this node (they failed; the coordinator may ask
  // again). Best effort.
  void drop_moves(const std::vector<unsigned>& shards);

  // Called (on the watch's thread) when a shard's owner changed as seen here.
  void on_owner_change(std::function<void(unsigned shard)> callback);

  // --- Replication (MembershipOptions::replicate). ---
  // The shard's replica record, as seen.
  std::optional<ReplicaSet> replicas(unsigned shard) const;
  // The follower of `shard` if this node owns it now and one is assigned.
  std::optional<FollowerView> follower(unsigned shard) const;
  // The owner, at its epoch: counts `follower` in the shard's in_sync set (`counted`) or not,
  // by compare-and-set, reading the record afresh when it changed meanwhile. True when the
  // record says so now (or, for counted=false, when `follower` is no longer the follower);
  // false if this node no longer owns the shard, or (counted=true) the follower changed. An
  // error: etcd did not answer (the record is as it was, or as asked). Blocks on etcd.
  Result<bool> record_in_sync(unsigned shard, const std::string& follower, bool counted);
  // Set before the first takeover can happen (right after construction).
  void on_takeover(Takeover takeover);

  struct Stats {
    std::uint64_t renewals = 0;
    std::uint64_t renewal_failures = 0;
    std::uint64_t joins = 0;         // leases granted (1 + re-joins after fencing)
    std::uint64_t claims = 0;        // shards claimed
    std::uint64_t moves_asked = 0;   // moves this node wrote (coordinator or leaving)
    std::uint64_t takeovers = 0;     // shards this node took over as their follower
    bool wrong_disk = false;         // its shards were given to another data directory
    double last_renew_seconds = 0;   // latency of the last successful renewal
  };
  Stats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::cluster
