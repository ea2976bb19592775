// Event: one unit of work for an actor (HTTP fetch, RPC call, socket event, due alarms), as
// sent to its host: an envelope of plain values and the address of its answer (ReplyTo).
// The caller's callback stays on the caller's node, in its ReplyRouter (PendingReply below
// is what the router keeps), and answers exactly once: if the event is dropped unanswered
// (CAF 0.17 sends no error for a message that dies in a mailbox), its destructor tells the
// router, which answers "unavailable", so no caller ever hangs.
#pragma once

#include <atomic>
#include <cstddef>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "cairn/http.hpp"
#include "cairn/stub.hpp"
#include "cairn/websocket.hpp"
#include "envelope.hpp"

namespace cairn {

class PendingReply {
 public:
  explicit PendingReply(Stub::FetchCallback cb) : callback_(std::move(cb)) {}
  explicit PendingReply(Stub::CallCallback cb) : callback_(std::move(cb)) {}
  PendingReply(const PendingReply&) = delete;
  PendingReply& operator=(const PendingReply&) = delete;
  ~PendingReply() {
    if (!done_) fail(Error{Code::unavailable, "the actor stopped before answering"});
  }

  // Answers a fetch with `response`, or a call with its JSON body (or its error).
  void answer(Response response);
  // Answers a call with `result`, or a fetch with the result as JSON.
  void answer(Result<nlohmann::json> result);
  void fail(const Error& error);
  // Each of the three runs the caller's callback at most once; whatever the callback throws
  // is logged and swallowed (it runs on an actor's thread).

  // Counts this reply in `queued` (the requests waiting for one actor) until it is answered.
  void count_in(std::shared_ptr<std::atomic<std::size_t>> queued) {
    queued->fetch_add(1, std::memory_order_relaxed);
    queued_ = std::move(queued);
  }

 private:
  // Marks the reply answered; false if it already was.
  bool finish() {
    if (done_) return false;
    done_ = true;
    if (queued_) queued_->fetch_sub(1, std::memory_order_relaxed);
    queued_.reset();
    return true;
  }

  std::variant<Stub::FetchCallback, Stub::CallCallback> callback_;
  std::shared_ptr<std::atomic<std::size_t>> queued_;
  bool done_ = false;
};

namespace detail {
struct SocketEntry;
}

// One client message of a socket, counted from the moment it is read until its event is
// done (run, or dropped): in the socket's waiting count and in its actor's queue. The
// destructor gives the credit back and, if the gateway stopped reading the socket, lets it
// read again once half of limits::max_socket_messages_waiting is free. Any thread.
class SocketCredit {
 public:
  explicit SocketCredit(std::shared_ptr<detail::SocketEntry> entry);
  ~SocketCredit();
  SocketCredit(const SocketCredit&) = delete;
  SocketCredit& operator=(const SocketCredit&) = delete;
  // Also counts the message in its actor's queue (max_queued_events).
  void count_in(std::shared_ptr<std::atomic<std::size_t>> queued) {
    queued->fetch_add(1, std::memory_order_relaxed);
    queued_ = std::move(queued);
  }
  // The socket's messages waiting now, this one included.
  std::uint32_t waiting() const noexcept { return waiting_; }

 private:
  std::shared_ptr<detail::SocketEntry> entry_;
  std::shared_ptr<std::atomic<std::size_t>> queued_;
  std::uint32_t waiting_ = 0;
};

struct FetchEvent {
  Request request;
};
struct CallEvent {
  std::string method;
  nlohmann::json args;
  TraceContext trace = {};  // the request the call descends from
};
struct SocketEvent {
  enum class Kind { message, close, error };
  SocketId socket = 0;
  Kind kind = Kind::message;
  std::string data;  // the message, the close reason, or the error
  bool binary = false;
  int code = 0;      // close code
  std::shared_ptr<SocketCredit> credit = {};  // messages only (backpressure)
};

// To a host: run the alarms due by now, each as an event of its own, then report its next
// alarm to the index (RuntimeCore::alarms_committed) at commit.
struct AlarmEvent {};

// To a host, from the admin API: an operator's operation on the actor's database, run
// between its events after the open batch has committed. It opens the database if need be
// but never constructs the user's object. `done` gets a JSON result (or the error).
struct AdminEvent {
  enum class Op {
    inspect,    // tables, alarms, sockets, size
    query,      // `text`: one read-only statement; at most `max_rows` rows
    copy_to,    // a consistent copy of the database at path `text` (export, backup)
    import,     // the empty database becomes a copy of the SQLite file at path `text`
    remove,     // sockets closed, database files deleted, alarms and name forgotten
    restore,    // the tables as they were at `text` (Unix ms), from the history (Database::restore_to)
  };
  Op op = Op::inspect;
  std::string text;
  std::size_t max_rows = 0;
  std::shared_ptr<std::promise<Result<nlohmann::json>>> done;
};

// To a host: finish the events sent before this one, commit, close the database, tell the
// directory (RuntimeCore::host_stopped) and quit. Carries the host's generation.
using evict_atom = caf::atom_constant<caf::atom("evict")>;

// Fails `to` with 503 through its node's ReplyRouter in this process, if any (reply_router.cpp).
void reply_dropped(ReplyTo to) noexcept;

struct Event {
  using Body = std::variant<FetchEvent, CallEvent, SocketEvent, AlarmEvent, AdminEvent>;
  Body body;
  ReplyTo reply;  // empty for socket and alarm events and a Context::call's answer

  explicit Event(Body b, ReplyTo to = {}) : body(std::move(b)), reply(to), owns_(static_cast<bool>(to)) {}
  // The reply belongs to one envelope: a moved-from one gives it up, a copy never has it.
  // CAF 0.17 moves our messages into mailboxes and hands handlers the stored value; it would
  // copy one only for skip or delegate, which the runtime never uses. A copy that outlived
  // its original would let the original's destructor answer 503 for an event that then runs
  // and commits, so keep it that way (or make ownership a shared token).
  Event(Event&& other) noexcept
      : body(std::move(other.body)), reply(other.reply), owns_(std::exchange(other.owns_, false)) {}
  Event(const Event& other) : body(other.body), reply(other.reply), owns_(false) {}
  Event& operator=(Event&& other) noexcept {
    if (this != &other) {
      release();
      body = std::move(other.body);
      reply = other.reply;
      owns_ = std::exchange(other.owns_, false);
    }
    return *this;
  }
  Event& operator=(const Event&) = delete;
  ~Event() { release(); }

  // The host has the event: from now on it answers `reply` (through the router) itself.
  ReplyTo take_reply() noexcept {
    owns_ = false;
    return reply;
  }

 private:
  void release() noexcept {
    if (owns_ && reply) reply_dropped(reply);
    owns_ = false;
  }
  bool owns_ = false;
};

}  // namespace cairn

// Its body is plain values and its reply an address; only SocketEvent::credit is a local
// object (in cluster mode the forwarding node keeps the credit until the owner's answer)
// and AdminEvent's promise (admin operations run on the actor's own node).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cairn::Event)
