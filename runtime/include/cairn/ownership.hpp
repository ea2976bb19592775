// Ownership: which shards this node may run actors of, and at which epoch (cluster mode; see
// DESIGN, "Many machines"). Without one (RuntimeOptions::ownership null) a node owns every
// shard. The runtime asks before it starts an instance and again before a committed batch's
// outputs leave: if the shard is no longer owned at the epoch the instance started under
// (the node fenced itself, or the shard moved), nothing leaves: every caller of the batch is
// answered 503 and the instance is dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cairn/actor_id.hpp"
#include "cairn/log_context.hpp"
#include "cairn/result.hpp"

namespace cairn {

class Ownership {
 public:
  virtual ~Ownership() = default;
  // The epoch at which this node owns `shard` (ActorId::shard()) now, or nullopt if it does
  // not (another node does, nobody does, or this node is fenced). Any thread; must not block
  // (it is asked on every event).
  virtual std::optional<std::int64_t> epoch(unsigned shard) const = 0;
  // False while `shard` is being handed to another node: events that arrive now are refused
  // (Code::unavailable, as for an unowned shard), while those already queued still run at
  // the shard's epoch (the hand-off drains them). Any thread; must not block.
  virtual bool admits(unsigned /*shard*/) const { return true; }
};

// RemoteCalls: how an RPC call (Context::call, or the answer it brings back) reaches an actor
// whose shard this node does not own (cluster mode). The runtime hands it every call whose
// target it does not serve now; without one (RuntimeOptions::remote_calls null) such a call
// fails with Code::unavailable.
class RemoteCalls {
 public:
  using Done = std::function<void(Result<nlohmann::json>)>;
  // Delivers the call on this node (no further hop): for a shard that became this node's
  // while the call waited for an owner.
  using Here = std::function<void(std::string method, nlohmann::json args, Done done)>;
  virtual ~RemoteCalls() = default;
  // Calls RPC method `method` of actor `target` on the node that owns it, or through `here`
  // if that is this node by then; `done` runs once, on any thread, with the answer or the
  // error (Code::timeout: the outcome is unknown). Must not block.
  // `trace` goes with the call (the callee's Context::trace()).
  virtual void call(const ActorId& target, std::string method, nlohmann::json args, Done done, Here here,
                    TraceContext trace) = 0;
};

}  // namespace cairn
