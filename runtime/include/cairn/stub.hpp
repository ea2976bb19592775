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
#include "cairn/typed.hpp"

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
  // Typed (cairn/typed.hpp): calls member function F of the actor's class, declared with
  // typed_methods, with `args` as F's argument type; `done` gets Result<F's result type>.
  // Checked when compiled; the actor must be of F's class (the stub's binding is not known
  // to the compiler: another class answers not_found, or invalid_argument).
  template <auto F, class A, class Done>
  void call(A&& args, Done done) const {
    using Arg = method_arg_t<F>;
    static_assert(!std::is_void_v<Arg>, "this method takes no argument: call<F>(done)");
    static_assert(std::is_constructible_v<Arg, A&&>, "the argument is not of the method's argument type");
    static_assert(std::is_invocable_v<Done&, Result<method_result_t<F>>>,
                  "done must take a Result of the method's result type");
    call(std::string(method_name<F>), nlohmann::json(Arg(std::forward<A>(args))),
         [done = std::move(done)](Result<nlohmann::json> answer) mutable {
           done(detail::decode_answer<method_result_t<F>>(std::move(answer), method_name<F>));
         });
  }
  // The same for a method without an argument.
  template <auto F, class Done>
  void call(Done done) const {
    static_assert(std::is_void_v<method_arg_t<F>>, "this method takes an argument: call<F>(args, done)");
    static_assert(std::is_invocable_v<Done&, Result<method_result_t<F>>>,
                  "done must take a Result of the method's result type");
    call(std::string(method_name<F>), nlohmann::json(),
         [done = std::move(done)](Result<nlohmann::json> answer) mutable {
           done(detail::decode_answer<method_result_t<F>>(std::move(answer), method_name<F>));
         });
  }
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
