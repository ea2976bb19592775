// What every session of one Gateway shares: the runtime, the options, and the sockets this
// gateway has reserved in the runtime's table (so stop() can close and release them).
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "cairn/gateway/gateway.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

class WebSocketSession;

struct SharedState {
  SharedState(Runtime& rt, GatewayOptions opts) : runtime(rt), options(std::move(opts)) {}

  Runtime& runtime;
  const GatewayOptions options;

  SocketId reserve(std::shared_ptr<SocketSink> sink) {
    SocketId id = runtime.reserve_socket(std::move(sink));
    std::lock_guard lock(mutex);
    sockets.emplace(id, std::weak_ptr<WebSocketSession>{});
    return id;
  }
  void opened(SocketId id, std::weak_ptr<WebSocketSession> session) {
    std::lock_guard lock(mutex);
    sockets[id] = std::move(session);
  }
  // The connection is gone: the runtime's entry goes too (after the actor heard of it).
  void forget(SocketId id) {
    std::lock_guard lock(mutex);
    sockets.erase(id);
  }

  std::mutex mutex;
  std::map<SocketId, std::weak_ptr<WebSocketSession>> sockets;
};

}  // namespace cairn::gateway
