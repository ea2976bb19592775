// Placement: where an actor lives. The directory asks it before it sends an event: to this
// node's host, or (cluster mode, not built yet) to the node that owns the actor's shard.
#pragma once

#include "cairn/actor_id.hpp"
#include "envelope.hpp"

namespace cairn {

class Placement {
 public:
  virtual ~Placement() = default;
  // The node that runs `id`'s instance. Any thread; must not block (a map lookup).
  virtual NodeId owner(const ActorId& id) const = 0;
};

// One node: every actor lives here.
class LocalPlacement final : public Placement {
 public:
  explicit LocalPlacement(NodeId self) : self_(self) {}
  NodeId owner(const ActorId&) const override { return self_; }

 private:
  NodeId self_;
};

}  // namespace cairn
