// Host: the CAF actor that is one live actor instance's single-threaded home. It opens the
// database, constructs the user's object on the first event (and again after a reset), and
// runs events one at a time, each in its own savepoint inside a batch transaction that
// commits when the mailbox has no more queued events (group commit) or the batch is full.
// Replies and socket sends are released only after that commit (the output gate).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "cairn/actor.hpp"
#include "cairn/context.hpp"
#include "cairn/registry.hpp"
#include "database.hpp"
#include "events.hpp"
#include "outbox.hpp"

namespace cairn {

namespace detail {
class RuntimeCore;
}

class Host;

class HostContext final : public Context {
 public:
  explicit HostContext(Host& host) : host_(host) {}
  const ActorId& id() const override;
  Sql& sql() override;
  Clock::time_point now() const override;
  Result<Response> accept_websocket(const Request& request, std::vector<std::string> tags) override;
  std::vector<WebSocket> websockets(const std::string& tag) override;
  Result<void> set_websocket_auto_response(std::optional<AutoResponse> rule) override;
  std::optional<AutoResponse> websocket_auto_response() const override;
  std::optional<Clock::time_point> auto_response_timestamp(const WebSocket& socket) const override;

 private:
  Host& host_;
};

class Host final : public caf::event_based_actor {
 public:
  Host(caf::actor_config& config, detail::RuntimeCore* core, ActorId id,
       const ActorFactory* factory, std::uint64_t generation);
  caf::behavior make_behavior() override;
  const char* name() const override { return "cairn-host"; }

 private:
  friend class HostContext;
  struct PendingAnswer {
    std::shared_ptr<PendingReply> reply;
    std::variant<Response, Result<nlohmann::json>> answer;
  };

  void handle(Event& event);
  void dispatch(Event& event);
  void commit_batch();
  void abort_batch(const Error& error);
  void reset_instance();
  void finish();

  detail::RuntimeCore* core_;
  ActorId id_;
  const ActorFactory* factory_;
  std::uint64_t generation_;  // this host's term in the directory
  HostContext context_;
  std::optional<Database> db_;
  std::unique_ptr<Actor> instance_;
  Methods methods_;
  Outbox outbox_;
  std::vector<PendingAnswer> answers_;
  bool in_batch_ = false;
  std::size_t batch_events_ = 0;
  std::uint64_t batch_ = 0;  // generation: a commit message for an older batch is stale
};

}  // namespace cairn
