// Outbox: what one actor's events send to sockets and other actors, held until their transaction commits
// (the output gate), and the undo log of what they changed in the socket table (accepts,
// attachments), replayed if they roll back. One per host; used on the host's thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/log_context.hpp"
#include "cairn/websocket.hpp"
#include "envelope.hpp"
#include "socket_table.hpp"

namespace cairn {

// Addressed by socket, not by connection object: the socket's node resolves it when the
// batch commits (a socket closed meanwhile is skipped).
struct SocketSend {
  SocketRef to;
  std::shared_ptr<const std::string> message;
  bool binary;
};
struct SocketClose {
  SocketRef to;
  int code;
  std::string reason;
};
// A call to another actor (Context::call), made once the batch commits.
struct ActorCall {
  ActorId target;
  std::string method;
  nlohmann::json args;
  std::string reply_method;
  nlohmann::json context;
  TraceContext trace;  // the calling event's, for the callee and the answer
};
using SocketOutput = std::variant<SocketSend, SocketClose, ActorCall>;

class Outbox {
 public:
  explicit Outbox(NodeId node) : node_(node) {}
  void send(SocketId socket, std::shared_ptr<const std::string> message, bool binary) {
    outputs_.emplace_back(std::in_place_type<SocketSend>, SocketSend{{node_, socket}, std::move(message), binary});
  }
  void close(SocketId socket, int code, std::string reason) {
    outputs_.emplace_back(std::in_place_type<SocketClose>, SocketClose{{node_, socket}, code, std::move(reason)});
  }
  // In place: GCC 12 warns (-Wmaybe-uninitialized, a false positive) when a moved-in
  // alternative is converted into the variant.
  void call(ActorCall call) { outputs_.emplace_back(std::in_place_type<ActorCall>, std::move(call)); }
  void accepted(SocketId socket) { accepted_.push_back(socket); }
  // `entry`'s attachment is about to change from `previous`.
  void attachment_changed(std::shared_ptr<detail::SocketEntry> entry, std::string previous) {
    undo_.push_back({std::move(entry), std::move(previous)});
  }

  // Event boundaries: what happened since begin_event() is undone by discard_event().
  void begin_event() {
    event_outputs_ = outputs_.size();
    event_undo_ = undo_.size();
    event_accepted_ = accepted_.size();
  }
  // Drops the event's outputs, restores its attachments; returns the sockets it accepted
  // (for the caller to un-accept in the table).
  std::vector<SocketId> discard_event() {
    outputs_.resize(event_outputs_);
    restore(event_undo_);
    std::vector<SocketId> accepted(accepted_.begin() + static_cast<std::ptrdiff_t>(event_accepted_),
                                   accepted_.end());
    accepted_.resize(event_accepted_);
    return accepted;
  }
  // The whole batch failed: as discard_event() for every event since the last commit.
  std::vector<SocketId> discard_batch() {
    outputs_.clear();
    restore(0);
    event_outputs_ = event_undo_ = event_accepted_ = 0;
    return std::exchange(accepted_, {});
  }
  // The sockets the open batch accepted so far (take() forgets them).
  const std::vector<SocketId>& accepted() const noexcept { return accepted_; }
  // The batch committed: everything kept so far, in order; the undo log is forgotten.
  std::vector<SocketOutput> take() {
    undo_.clear();
    accepted_.clear();
    event_outputs_ = event_undo_ = event_accepted_ = 0;
    return std::exchange(outputs_, {});
  }

 private:
  struct Undo {
    std::shared_ptr<detail::SocketEntry> entry;
    std::string previous;
  };
  void restore(std::size_t from) {
    while (undo_.size() > from) {
      undo_.back().entry->attachment = std::move(undo_.back().previous);
      undo_.pop_back();
    }
  }

  NodeId node_;  // where this actor's sockets are (this node, until sockets are forwarded)
  std::vector<SocketOutput> outputs_;
  std::vector<Undo> undo_;
  std::vector<SocketId> accepted_;
  std::size_t event_outputs_ = 0;
  std::size_t event_undo_ = 0;
  std::size_t event_accepted_ = 0;
};

}  // namespace cairn
