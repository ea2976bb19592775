// Ownership: which shards this node may run actors of, and at which epoch (cluster mode; see
// DESIGN, "Many machines"). Without one (RuntimeOptions::ownership null) a node owns every
// shard. The runtime asks before it starts an instance and again before a committed batch's
// outputs leave: if the shard is no longer owned at the epoch the instance started under
// (the node fenced itself, or the shard moved), nothing leaves: every caller of the batch is
// answered 503 and the instance is dropped.
#pragma once

#include <cstdint>
#include <optional>

namespace cairn {

class Ownership {
 public:
  virtual ~Ownership() = default;
  // The epoch at which this node owns `shard` (ActorId::shard()) now, or nullopt if it does
  // not (another node does, nobody does, or this node is fenced). Any thread; must not block
  // (it is asked on every event).
  virtual std::optional<std::int64_t> epoch(unsigned shard) const = 0;
};

}  // namespace cairn
