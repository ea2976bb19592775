// Outbox: what one actor's events send to sockets, held until their transaction commits
// (the output gate). One per host; used on the host's thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/websocket.hpp"

namespace cairn {

struct SocketSend {
  SocketId socket;
  std::shared_ptr<const std::string> message;
  bool binary;
};
struct SocketClose {
  SocketId socket;
  int code;
  std::string reason;
};
using SocketOutput = std::variant<SocketSend, SocketClose>;

class Outbox {
 public:
  void send(SocketId socket, std::shared_ptr<const std::string> message, bool binary) {
    outputs_.push_back(SocketSend{socket, std::move(message), binary});
  }
  void close(SocketId socket, int code, std::string reason) {
    outputs_.push_back(SocketClose{socket, code, std::move(reason)});
  }
  void accepted(SocketId socket) { accepted_.push_back(socket); }

  // Event boundaries: outputs since begin_event() are dropped by discard_event().
  void begin_event() {
    event_start_ = outputs_.size();
    accepted_.clear();
  }
  void discard_event() { outputs_.resize(event_start_); }
  // Sockets accepted by the current event (to undo on rollback).
  const std::vector<SocketId>& accepted_in_event() const { return accepted_; }

  // Everything kept so far, in order; empties the outbox.
  std::vector<SocketOutput> take() {
    event_start_ = 0;
    return std::exchange(outputs_, {});
  }
  void clear() {
    outputs_.clear();
    event_start_ = 0;
  }

 private:
  std::vector<SocketOutput> outputs_;
  std::size_t event_start_ = 0;
  std::vector<SocketId> accepted_;
};

}  // namespace cairn
