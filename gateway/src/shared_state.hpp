// What every session of one Gateway shares: the runtime, the options, and the sockets this
// gateway has reserved in the runtime's table (so stop() can close and release them).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
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

  // Takes one of options.max_connections; null if all are taken. The connection holds the
  // slot (HTTP, then WebSocket session) and gives it back when the last holder goes.
  static std::shared_ptr<void> take_connection_slot(const std::shared_ptr<SharedState>& self) {
    if (self->connections.fetch_add(1, std::memory_order_relaxed) >= self->options.max_connections) {
      self->connections.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    return std::shared_ptr<void>(self.get(), [self](void*) {
      self->connections.fetch_sub(1, std::memory_order_relaxed);
    });
  }

  std::mutex mutex;
  std::map<SocketId, std::weak_ptr<WebSocketSession>> sockets;
  std::atomic<std::size_t> connections{0};  // open HTTP and WebSocket connections
  std::atomic<std::uint64_t> connections_refused{0};  // answered 503: max_connections reached
};

}  // namespace cairn::gateway
