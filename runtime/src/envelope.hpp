// The addresses that messages crossing the directory carry instead of callbacks or pointers:
// the node that holds a caller's callback (ReplyTo) and a socket (SocketRef). Plain values,
// so an event can be serialized for another node (cluster mode). See DESIGN, "The gateway
// <-> runtime bridge".
#pragma once

#include <cstdint>

#include "cairn/websocket.hpp"

namespace cairn {

// A node of the runtime. In one process, each RuntimeCore is a node of its own (tests run
// several); in cluster mode the ids name the cluster's members.
using NodeId = std::uint32_t;

// Where an event's answer goes: the caller's node and the key of its callback there
// (ReplyRouter). Empty (correlation 0) for events nobody waits on: socket events, alarms.
struct ReplyTo {
  NodeId node = 0;
  std::uint64_t correlation = 0;
  explicit operator bool() const noexcept { return correlation != 0; }
  friend bool operator==(const ReplyTo&, const ReplyTo&) = default;
};

// A socket, wherever its connection is: the node whose gateway holds it and its id there.
struct SocketRef {
  NodeId node = 0;
  SocketId socket = 0;
};

}  // namespace cairn
