// CopyPromoter: a follower's copy of a shard becomes this node's own (cairn/replication.hpp,
// ShardMirror::promote), in two ways (cairn/cluster/membership.hpp):
//   - failover: its owner is gone and this node, counted in sync, takes the shard over
//     (Takeover::prepare, then finish with the claim's outcome);
//   - a graceful hand-off: its owner leaves, sends everything queued (HttpReplicator::settle)
//     and asks this node to promote its copy (ShardMover's promote), then assigns it the shard.
// Either way the copy moves into _shards/NNNN and the node's index rows (names, alarms) are
// rebuilt from its files. Until the claim's outcome is known it carries a marker, so that a
// restart in between takes the copy as it is rather than losing it: <shard dir>/.promoted
// with the replica record's revision (failover), or an empty <shard dir>/.handed-<move>.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/replication.hpp"
#include "cairn/result.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

class CopyPromoter {
 public:
  CopyPromoter(Runtime& runtime, std::shared_ptr<ShardMirror> mirror, std::filesystem::path data_dir);

  // Failover (Takeover::prepare): false if the copy cannot be made this node's (nothing claimed).
  bool take_over(unsigned shard, std::int64_t record);
  // Takeover::finish: claimed at `epoch` (the copy's fence is recorded), or refused (put back).
  void finish_takeover(unsigned shard, std::optional<std::int64_t> epoch);

  // A hand-off of a group of shards (ShardMover::Options::promote), all or none: each copy only
  // if it applied exactly to its position. Made durable with one syncfs for the group.
  Result<void> hand_in(const std::vector<std::pair<unsigned, ReplicaPosition>>& shards, const std::string& move);
  // Undoes hand_in() of `move` (ShardMover::Options::demote); nothing if the copy is not that
  // move's (already put back, or claimed).
  void hand_back(unsigned shard, const std::string& move);
  // The owner of `shard` changed: if this node now owns it at `epoch` and its copy came by a
  // hand-off, the copy's fence is recorded there and the marker goes.
  void claimed(unsigned shard, std::int64_t epoch);
  // A batch of `epoch` was refused because the copy was handed in here at that epoch or an
  // older one: its owner kept the shard or claimed it again (the hand-off did not go through,
  // and its abort never came). Unless this node owns the shard (`owned_here`), the copy goes
  // back to the mirror (the owner's next batch seeds it). True if it did.
  bool put_back_for_batch(unsigned shard, std::int64_t epoch, bool owned_here);
  // A node that comes back (replicated; after a restart, or a partition): its copy of
  // `shard` goes to the trash with its index rows if `stale` says so (a follower took the
  // shard over while this node was away: etcd assigns it to another node, with no move of it
  // bound here); never a copy with a marker, nor one with instances open. `stale` is asked
  // with this promoter's lock held, so no takeover of the shard runs between its answer and
  // the discard (read before a takeover's claim, it would say stale of the copy the takeover
  // then serves). True if the copy went.
  bool discard_stale(unsigned shard, const std::function<bool()>& stale);

 private:
  std::filesystem::path marker_of(unsigned shard) const;
  // The copy's marker: the record's revision (a takeover), "move <id> " (a hand-off), "" if none.
  std::string read_marker(unsigned shard) const;
  void remove_markers(unsigned shard);
  // Moves a stale _shards/NNNN aside (the trash is emptied at the next start).
  void trash(unsigned shard, const std::string& why);
  void demote_locked(unsigned shard);

  Runtime& runtime_;
  std::shared_ptr<ShardMirror> mirror_;
  std::filesystem::path data_dir_;
  std::mutex mutex_;  // one promotion or demotion at a time
};

}  // namespace cairn::gateway
