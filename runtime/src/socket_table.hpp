// SocketTable: every WebSocket the runtime knows, keyed by id, with its owner actor and tags.
// Lives in the runtime, outside any actor, so sockets outlive an instance. Thread-safe:
// used by gateway threads (reserve, events) and actor threads (accept, list, send).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/result.hpp"
#include "cairn/websocket.hpp"

namespace cairn {

struct SocketInfo {
  std::shared_ptr<SocketSink> sink;
  std::optional<ActorId> owner;  // set once the actor accepted the socket
  std::vector<std::string> tags;
};

class SocketTable {
 public:
  SocketId reserve(std::shared_ptr<SocketSink> sink);
  // Makes reserved socket `id` one of `owner`'s, with `tags`. invalid_argument for bad tags
  // (quoting limits::max_websocket_tags / max_websocket_tag_bytes) or a socket that is not
  // reserved, or already accepted.
  Result<void> accept(SocketId id, const ActorId& owner, std::vector<std::string> tags);
  // Undoes accept() (the event that accepted it rolled back); the reservation stays.
  void unaccept(SocketId id);
  void remove(SocketId id);

  std::optional<SocketInfo> find(SocketId id) const;
  std::shared_ptr<SocketSink> sink(SocketId id) const;
  // The sockets `owner_hex` accepted, those carrying `tag` if it is not empty, by id.
  std::vector<std::pair<SocketId, std::vector<std::string>>> list(const std::string& owner_hex,
                                                                  const std::string& tag) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  SocketId next_id_ = 1;
  std::unordered_map<SocketId, SocketInfo> sockets_;
  std::unordered_map<std::string, std::set<SocketId>> by_owner_;
};

}  // namespace cairn
