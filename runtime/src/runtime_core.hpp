// RuntimeCore: the state behind Runtime and every Stub: the CAF actor system, the directory
// of live hosts (one per actor id), the socket table. Thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "cairn/runtime.hpp"
#include "events.hpp"
#include "socket_table.hpp"

namespace cairn::detail {

class RuntimeCore {
 public:
  RuntimeCore(Registry registry, RuntimeOptions options);
  ~RuntimeCore();

  // Sends `event` to the host of `id`, spawning it first if it is not live (exactly one
  // host per id, however many threads ask at once). After shutdown the event's reply fails.
  void deliver(const ActorId& id, Event event);
  // Sends a socket event to the socket's owner; ignored for an unknown or unaccepted socket.
  void deliver_socket_event(SocketEvent event);

  // Creates <data>/<binding>/ (once) and makes its entry durable; returns the db path.
  std::filesystem::path database_path(const ActorId& id);

  void shutdown();

  const Registry registry;
  const RuntimeOptions options;
  SocketTable sockets;

 private:
  caf::actor_system_config config_;
  std::unique_ptr<caf::actor_system> system_;
  std::mutex mutex_;
  std::unordered_map<std::string, caf::actor> live_;  // by ActorId::hex()
  std::set<std::string> binding_dirs_;
  bool stopping_ = false;
};

}  // namespace cairn::detail
