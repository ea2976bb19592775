// Stub: how code outside an actor reaches it (Durable Objects' stub). Cheap to copy; any
// thread. Calls never block: the callback runs later, exactly once, on a runtime thread,
// after the event's transaction has committed (so it must not block either: hop to your
// own thread, as the gateway does).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cairn/actor_id.hpp"
#include "cairn/http.hpp"
#include "cairn/log_context.hpp"
#include "cairn/result.hpp"

namespace cairn {

namespace detail {
class RuntimeCore;
}

class Stub {
 public:
  using FetchCallback = std::function<void(Response)>;
  using CallCallback = std::function<void(Result<nlohmann::json>)>;

  // Delivers `request` to the actor's fetch(). Errors (the actor threw, the runtime is
  // stopping) arrive as a Response with a JSON error body.
  void fetch(Request request, FetchCallback done) const;
  // Calls RPC method `method` of the actor with `args`. An unknown method is not_found.
  void call(std::string method, nlohmann::json args, CallCallback done) const;
  // The same, on this node only: Code::unavailable if it does not serve the actor's shard
  // now (cluster mode; the internal listener answers other nodes' calls with it).
  // `trace`: the request the call descends from (the callee's Context::trace()).
  void call_here(std::string method, nlohmann::json args, CallCallback done, TraceContext trace = {}) const;

  const ActorId& id() const noexcept { return id_; }

 private:
  friend class Runtime;
  Stub(std::shared_ptr<detail::RuntimeCore> core, ActorId id)
      : core_(std::move(core)), id_(std::move(id)) {}
  std::shared_ptr<detail::RuntimeCore> core_;
  ActorId id_;
};

}  // namespace cairn
