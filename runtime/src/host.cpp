// Host: event loop, group commit and output gate of one actor instance.
#include "host.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "cairn/limits.hpp"
#include "runtime_core.hpp"

namespace cairn {
namespace {

using commit_atom = caf::atom_constant<caf::atom("commit")>;

}  // namespace

const ActorId& HostContext::id() const { return host_.id_; }
Sql& HostContext::sql() { return host_.db_->sql(); }
Clock::time_point HostContext::now() const { return host_.core_->options.clock->now(); }

Result<Response> HostContext::accept_websocket(const Request& request,
                                               std::vector<std::string> tags) {
  if (!request.is_websocket_upgrade() || request.websocket == 0) {
    return fail(Code::invalid_argument, "accept_websocket() needs a WebSocket upgrade request");
  }
  auto accepted = host_.core_->sockets.accept(request.websocket, host_.id_, std::move(tags));
  if (!accepted) return accepted.error();
  host_.outbox_.accepted(request.websocket);
  return Response::switching_protocols();
}

std::vector<WebSocket> HostContext::websockets(const std::string& tag) {
  std::vector<WebSocket> out;
  auto entries = host_.core_->sockets.list(host_.id_.hex(), tag);
  out.reserve(entries.size());
  for (auto& entry : entries) out.emplace_back(std::move(entry), &host_.outbox_);
  return out;
}

Result<void> HostContext::set_websocket_auto_response(std::optional<AutoResponse> rule) {
  if (rule) {
    auto valid = rule->validate();
    if (!valid) return valid;
  }
  host_.core_->sockets.set_rule(
      host_.id_, rule ? std::make_shared<const AutoResponse>(std::move(*rule)) : nullptr);
  return {};
}

std::optional<AutoResponse> HostContext::websocket_auto_response() const {
  auto rule = host_.core_->sockets.rule(host_.id_.hex());
  if (!rule) return std::nullopt;
  return *rule;
}

std::optional<Clock::time_point> HostContext::auto_response_timestamp(const WebSocket& socket) const {
  auto entry = host_.core_->sockets.find(socket.id());
  if (!entry) return std::nullopt;
  auto ticks = entry->auto_response_at.load();
  if (ticks == detail::SocketEntry::never) return std::nullopt;
  return Clock::time_point{Clock::time_point::duration{ticks}};
}

Host::Host(caf::actor_config& config, detail::RuntimeCore* core, ActorId id,
           const ActorFactory* factory, std::uint64_t generation)
    : caf::event_based_actor(config), core_(core), id_(std::move(id)), factory_(factory),
      generation_(generation), context_(*this) {}

caf::behavior Host::make_behavior() {
  set_exit_handler([this](caf::exit_msg& msg) {
    finish();
    quit(msg.reason);
  });
  return {
      [this](Event& event) { handle(event); },
      [this](commit_atom, std::uint64_t batch) {
        if (in_batch_ && batch == batch_) commit_batch();
      },
      [this](evict_atom, std::uint64_t generation) {
        if (generation != generation_) return;
        finish();
        core_->host_stopped(id_, generation_);
        quit();
      },
  };
}

void Host::handle(Event& event) {
  // No exception may leave this function: CAF 0.17 would kill the actor.
  try {
    if (!db_) db_.emplace(core_->database_path(id_), core_->options.durability);
    if (!in_batch_) {
      db_->begin();
      in_batch_ = true;
      batch_events_ = 0;
      ++batch_;
      // Queued behind every event already in the mailbox: they all join this batch.
      send(this, commit_atom::value, batch_);
    }
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot start an event: {}", id_.binding(), id_.hex(), e.what());
    if (event.reply) event.reply->fail(Error{Code::unavailable, "the actor's storage is unavailable"});
    abort_batch(Error{Code::unavailable, "the actor's storage is unavailable"});
    return;
  }
  outbox_.begin_event();
  std::size_t answers_before = answers_.size();
  try {
    db_->savepoint();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: savepoint failed: {}", id_.binding(), id_.hex(), e.what());
    if (event.reply) event.reply->fail(Error{Code::internal, "the actor's storage failed"});
    abort_batch(Error{Code::internal, "the actor's storage failed"});
    return;
  }
  try {
    if (!instance_) {
      instance_ = (*factory_)(context_);
      core_->instance_started();
      methods_ = instance_->methods();
    }
    dispatch(event);
    db_->release();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: event failed, rolled back: {}", id_.binding(), id_.hex(), e.what());
    for (SocketId socket : outbox_.discard_event()) core_->sockets.unaccept(socket);
    answers_.resize(answers_before);
    try {
      db_->rollback_to_savepoint();
    } catch (const std::exception& rollback_error) {
      spdlog::error("actor {} {}: rollback failed: {}", id_.binding(), id_.hex(),
                    rollback_error.what());
      if (event.reply) event.reply->fail(Error{Code::internal, "the actor's storage failed"});
      abort_batch(Error{Code::internal, "the actor's storage failed"});
      return;
    }
    if (event.reply) {
      answers_.push_back({event.reply, Result<nlohmann::json>(Error{
                                           Code::internal,
                                           "internal error in actor " + id_.binding() + ": " +
                                               e.what()})});
    }
    // Members may be half-updated: the next event gets a fresh object (the data is intact).
    reset_instance();
  }
  if (++batch_events_ >= limits::max_events_per_commit) commit_batch();
}

void Host::dispatch(Event& event) {
  if (auto* fetch = std::get_if<FetchEvent>(&event.body)) {
    answers_.push_back({event.reply, instance_->fetch(fetch->request)});
    return;
  }
  if (auto* call = std::get_if<CallEvent>(&event.body)) {
    auto method = methods_.find(call->method);
    if (method == methods_.end()) {
      answers_.push_back({event.reply, Result<nlohmann::json>(Error{
                                           Code::not_found, "actor " + id_.binding() +
                                                                " has no method '" +
                                                                call->method + "'"})});
      return;
    }
    answers_.push_back({event.reply, method->second(call->args)});
    return;
  }
  auto& socket_event = std::get<SocketEvent>(event.body);
  auto route = core_->sockets.route(socket_event.socket);
  if (!route.owner || !(route.owner->id == id_)) return;
  WebSocket socket(std::move(route.entry), &outbox_);
  switch (socket_event.kind) {
    case SocketEvent::Kind::message:
      instance_->on_message(socket, socket_event.data, socket_event.binary);
      break;
    case SocketEvent::Kind::close:
      core_->sockets.remove(socket_event.socket);
      instance_->on_close(socket, socket_event.code, socket_event.data);
      break;
    case SocketEvent::Kind::error:
      core_->sockets.remove(socket_event.socket);
      instance_->on_error(socket, socket_event.data);
      break;
  }
}

void Host::commit_batch() {
  try {
    db_->commit();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: commit failed: {}", id_.binding(), id_.hex(), e.what());
    abort_batch(Error{Code::internal, "the actor's write could not be made durable"});
    return;
  }
  in_batch_ = false;
  batch_events_ = 0;
  // The output gate opens: everything the batch sent leaves now, in order.
  for (auto& output : outbox_.take()) {
    if (auto* send = std::get_if<SocketSend>(&output)) {
      send->sink->send(std::move(send->message), send->binary);
    } else {
      auto& close = std::get<SocketClose>(output);
      close.sink->close(close.code, std::move(close.reason));
    }
  }
  for (auto& pending : std::exchange(answers_, {})) {
    if (!pending.reply) continue;
    std::visit([&](auto& answer) { pending.reply->answer(std::move(answer)); }, pending.answer);
  }
}

void Host::abort_batch(const Error& error) {
  // Nothing of the batch happened: its outputs are dropped, its callers told, and the
  // instance and its connection start afresh on the next event.
  if (db_) db_->rollback();
  for (SocketId socket : outbox_.discard_batch()) core_->sockets.unaccept(socket);
  for (auto& pending : std::exchange(answers_, {})) {
    if (pending.reply) pending.reply->fail(error);
  }
  in_batch_ = false;
  batch_events_ = 0;
  reset_instance();
  db_.reset();
}

void Host::reset_instance() {
  methods_.clear();
  instance_.reset();
}

void Host::finish() {
  if (in_batch_) commit_batch();
  reset_instance();
  db_.reset();
}

}  // namespace cairn
