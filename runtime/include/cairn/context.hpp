// What an actor instance sees of the runtime: its id, its database, its sockets, the time.
// Handed to the actor's constructor; valid for the instance's lifetime, on its thread only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/clock.hpp"
#include "cairn/http.hpp"
#include "cairn/log_context.hpp"
#include "cairn/result.hpp"
#include "cairn/sql.hpp"
#include "cairn/typed.hpp"
#include "cairn/websocket.hpp"

#include <nlohmann/json.hpp>

namespace cairn {

// A pending alarm of an actor: its name ("" for the unnamed one) and when it is due.
struct Alarm {
  std::string name;
  Clock::time_point when;
  friend bool operator==(const Alarm&, const Alarm&) = default;
};

class Context {
 public:
  virtual ~Context() = default;
  virtual const ActorId& id() const = 0;
  virtual Sql& sql() = 0;
  virtual Clock::time_point now() const = 0;
  // The request this event descends from (README "Securing the public listener"): for a
  // fetch its Request's id and traceparent; for a call, an alarm or a call's answer those of
  // the event that made the call or set the alarm. Empty when none (a socket message, a call
  // from outside any request). Context::call and alarms carry it on by themselves.
  virtual TraceContext trace() const { return {}; }

  // Accepts the upgrade `request` as a WebSocket of this actor with `tags` (at most
  // limits::max_websocket_tags of limits::max_websocket_tag_bytes each). Return the result
  // from fetch(). Fails with invalid_argument for a request that is not an upgrade, or for
  // bad tags (then return Response::error(result.error())).
  virtual Result<Response> accept_websocket(const Request& request,
                                            std::vector<std::string> tags = {}) = 0;
  // This actor's open sockets, all of them or those carrying `tag`, in the order accepted.
  // After a wake this lists every socket still open, accepted by any earlier instance.
  virtual std::vector<WebSocket> websockets(const std::string& tag = {}) = 0;

  // Messages the runtime answers without waking this actor; kept while it is evicted (set it
  // in the constructor). nullopt clears it. invalid_argument for a rule that fails
  // AutoResponse::validate(). Takes effect at once, not at commit: it is not data.
  virtual Result<void> set_websocket_auto_response(std::optional<AutoResponse> rule) = 0;
  virtual std::optional<AutoResponse> websocket_auto_response() const = 0;
  // When the runtime last auto-responded on `socket`, or nullopt if it never has.
  virtual std::optional<Clock::time_point> auto_response_timestamp(const WebSocket& socket) const = 0;

  // --- Alarms: part of the event's transaction (a rolled-back event sets or deletes none).
  // When one falls due, the runtime runs Actor::on_alarm as an event of its own, re-creating
  // an evicted instance, and after a restart. Durable Objects' single alarm is the unnamed
  // one; any number of named alarms (each name at most once) live beside it. A time in the
  // past fires at once. Setting an alarm that exists moves it (and clears its retries).
  // invalid_argument for a name over limits::max_alarm_name_bytes, resource_exhausted past
  // limits::max_alarms_per_actor.
  Result<void> set_alarm(Clock::time_point when) { return put_alarm({}, when); }
  Result<void> set_alarm(std::string_view name, Clock::time_point when) {
    if (name.empty()) {
      return fail(Code::invalid_argument,
                  "a named alarm needs a name; the unnamed alarm is set_alarm(when)");
    }
    return put_alarm(name, when);
  }
  // When the unnamed (or the named) alarm is due, if it is set.
  std::optional<Clock::time_point> alarm() { return find_alarm({}); }
  std::optional<Clock::time_point> alarm(std::string_view name) { return find_alarm(name); }
  // Every pending alarm, the soonest first.
  virtual std::vector<Alarm> alarms() = 0;
  // Deletes the unnamed (or the named) alarm; false if it was not set.
  bool delete_alarm() { return remove_alarm({}); }
  bool delete_alarm(std::string_view name) { return name.empty() ? false : remove_alarm(name); }

  // --- Calling another actor. Nothing blocks: the call is made once this event commits
  // (not at all if it rolls back), and the answer comes back later as an event of this
  // actor: its RPC method `reply_method` runs with {"result": <answer>, "context": context}
  // or {"error": {"code": "not_found", "message": ..., "status": 404}, "context": context}.
  // The reply finds this actor even if it was evicted meanwhile. At most once: a crash
  // between the commit and the call loses the call. not_found for an unregistered binding,
  // invalid_argument for a bad name or a `reply_method` this class does not have.
  virtual Result<void> call(std::string_view binding, std::string_view name, std::string method,
                            nlohmann::json args, std::string reply_method,
                            nlohmann::json context = {}) = 0;
  // Typed (cairn/typed.hpp): calls member function F of `binding`'s class with `args` as F's
  // argument; the answer comes to this actor's typed method Reply, which must take a
  // CallReply<F's result type> (both checked when compiled). For example
  //   ctx.call<&Counter::increment, &Caller::counted>("COUNTER", "a", Add{2});
  //   Result<void> Caller::counted(const cairn::CallReply<Count>& reply);
  template <auto F, auto Reply, class A>
    requires(!std::is_void_v<method_arg_t<F>>)
  Result<void> call(std::string_view binding, std::string_view name, A&& args, nlohmann::json context = {}) {
    using Arg = method_arg_t<F>;
    static_assert(std::is_constructible_v<Arg, A&&>, "the argument is not of the method's argument type");
    static_assert(std::is_same_v<method_arg_t<Reply>, CallReply<method_result_t<F>>>,
                  "the reply method must take a CallReply of the called method's result type");
    return call(binding, name, std::string(method_name<F>), nlohmann::json(Arg(std::forward<A>(args))),
                std::string(method_name<Reply>), std::move(context));
  }
  template <auto F, auto Reply>
    requires std::is_void_v<method_arg_t<F>>
  Result<void> call(std::string_view binding, std::string_view name, nlohmann::json context = {}) {
    static_assert(std::is_same_v<method_arg_t<Reply>, CallReply<method_result_t<F>>>,
                  "the reply method must take a CallReply of the called method's result type");
    return call(binding, name, std::string(method_name<F>), nlohmann::json(), std::string(method_name<Reply>),
                std::move(context));
  }

  // Durable Objects' deleteAll: drops every table (the actor's data), deletes every alarm and
  // closes every socket (1000, "deleted") when the event commits; the next event gets a
  // fresh instance. Part of the event's transaction like everything else.
  virtual void delete_all() = 0;

 protected:
  virtual Result<void> put_alarm(std::string_view name, Clock::time_point when) = 0;
  virtual std::optional<Clock::time_point> find_alarm(std::string_view name) = 0;
  virtual bool remove_alarm(std::string_view name) = 0;
};

}  // namespace cairn
