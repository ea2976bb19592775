// Runtime: owns the actor system, the directory of live actors and the socket table.
// One per process; made in main() after the Registry is filled. Thread-safe.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/clock.hpp"
#include "cairn/registry.hpp"
#include "cairn/result.hpp"
#include "cairn/stub.hpp"
#include "cairn/websocket.hpp"

namespace cairn {

enum class Durability {
  full,    // every commit is fsync'd: an answer means the write is on disk (the default)
  normal,  // WAL with synchronous=NORMAL: survives a process crash, not a power loss
};

struct RuntimeOptions {
  std::filesystem::path data_dir = "data";
  Durability durability = Durability::full;
  // Threads that run actor events and their commits. A commit blocks its thread for an
  // fsync, so this is sized by fsyncs in flight, not by cores.
  std::size_t threads = 8;
  std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
};

class Runtime {
 public:
  // Creates data_dir if needed. Throws std::runtime_error if it cannot be used.
  Runtime(Registry registry, RuntimeOptions options);
  // Calls shutdown().
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The stub of actor `name` under `binding`; returns at once (the actor starts on its first
  // event). not_found for an unregistered binding, invalid_argument for a bad name.
  Result<Stub> get(std::string_view binding, std::string_view name) const;

  // --- The socket table, for the gateway. Any thread. ---
  // Reserves an id for an upgrade request; pass it as Request::websocket.
  SocketId reserve_socket(std::shared_ptr<SocketSink> sink);
  // Forgets a socket the actor did not accept, or one the gateway failed to open.
  void release_socket(SocketId id);
  // Events from the client; each runs as an event of the socket's actor.
  void socket_message(SocketId id, std::string message, bool binary);
  void socket_closed(SocketId id, int code, std::string reason);
  void socket_error(SocketId id, std::string error);

  // Finishes every actor's open batch (commit, answers released), closes the databases and
  // stops the actor system. Later calls answer unavailable. Idempotent; blocks.
  void shutdown();

 private:
  std::shared_ptr<detail::RuntimeCore> core_;
};

}  // namespace cairn
