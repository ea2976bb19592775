// SocketTable: every WebSocket the runtime knows, keyed by id, with its owner actor, tags,
// attachment and auto-response time, and per owner its auto-response rule. Lives in the
// runtime, outside any actor, so sockets outlive an instance (hibernation). Thread-safe:
// used by gateway threads (reserve, messages) and actor threads (accept, list, send).
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/result.hpp"
#include "cairn/websocket.hpp"

namespace cairn::detail {

// One actor's share of the table. Made on its first accept or rule; dropped when it has
// neither sockets nor rule, or when the instance leaves memory without sockets.
// Locks: the table's mutex guards its maps and each owner's `rule`; an owner's own mutex
// guards its `sockets` (changed with both held, table first), so a walk over one actor's
// sockets (a broadcast to thousands) holds only that actor's lock, not every actor's.
struct SocketOwner {
  explicit SocketOwner(ActorId owner) : id(std::move(owner)) {}
  const ActorId id;
  mutable std::mutex mutex;
  std::map<SocketId, std::shared_ptr<SocketEntry>> sockets;  // guarded by `mutex`
  std::shared_ptr<const AutoResponse> rule;                   // guarded by the table's mutex
  std::size_t count() const {
    std::lock_guard lock(mutex);
    return sockets.size();
  }
};

struct SocketEntry {
  SocketEntry(SocketId socket, std::shared_ptr<SocketSink> s) : id(socket), sink(std::move(s)) {}
  const SocketId id;
  const std::shared_ptr<SocketSink> sink;
  // Written by accept()/unaccept() under the table's mutex on the owner's event thread; read
  // by that thread, or by others under the mutex.
  std::shared_ptr<SocketOwner> owner;
  std::vector<std::string> tags;
  // The owner's events only (one at a time, whichever instance): JSON text, empty = none.
  std::string attachment;
  // Clock ticks since the epoch of the last auto-response, or `never`. Any thread.
  static constexpr std::int64_t never = INT64_MIN;
  std::atomic<std::int64_t> auto_response_at{never};
  // Backpressure (SocketCredit): its messages not yet run, and whether the gateway stopped
  // reading it. Any thread.
  std::atomic<std::uint32_t> waiting{0};
  std::atomic<bool> paused{false};
};

class SocketTable {
 public:
  SocketTable() = default;
  // An owner holds its entries and an entry its owner: the destructor breaks those cycles.
  ~SocketTable();
  SocketTable(const SocketTable&) = delete;
  SocketTable& operator=(const SocketTable&) = delete;

  SocketId reserve(std::shared_ptr<SocketSink> sink);
  // Makes reserved socket `id` one of `owner`'s, with `tags`. invalid_argument for bad tags
  // (quoting limits::max_websocket_tags / max_websocket_tag_bytes), a socket that is not
  // reserved or already accepted; resource_exhausted past limits::max_websockets_per_actor.
  Result<void> accept(SocketId id, const ActorId& owner, std::vector<std::string> tags);
  // Undoes accept() (the event that accepted it rolled back); the reservation stays.
  void unaccept(SocketId id);
  void remove(SocketId id);

  std::shared_ptr<SocketEntry> find(SocketId id) const;
  // The sinks of `ids`, in order, under one lock (null for a socket no longer in the table):
  // how a committed batch's outputs, addressed by socket, find their connections.
  std::vector<std::shared_ptr<SocketSink>> sinks(const std::vector<SocketId>& ids) const;
  // The socket and, if it has been accepted, its owner and the owner's rule (one lock).
  struct Routing {
    std::shared_ptr<SocketEntry> entry;
    std::shared_ptr<SocketOwner> owner;
    std::shared_ptr<const AutoResponse> rule;
  };
  Routing route(SocketId id) const;
  // The sockets `owner_hex` accepted, those carrying `tag` if it is not empty, by id.
  std::vector<std::shared_ptr<SocketEntry>> list(const std::string& owner_hex,
                                                 const std::string& tag) const;

  void set_rule(const ActorId& owner, std::shared_ptr<const AutoResponse> rule);
  std::shared_ptr<const AutoResponse> rule(const std::string& owner_hex) const;
  // The instance left memory: forget its rule unless it still has sockets.
  void instance_stopped(const std::string& owner_hex);

  std::size_t size() const;
  // Every actor with accepted sockets, and how many.
  std::vector<std::pair<ActorId, std::size_t>> owners() const;

 private:
  void drop_if_unused(std::unordered_map<std::string, std::shared_ptr<SocketOwner>>::iterator it);
  void detach(SocketEntry& entry);

  mutable std::mutex mutex_;
  SocketId next_id_ = 1;
  std::unordered_map<SocketId, std::shared_ptr<SocketEntry>> sockets_;
  std::unordered_map<std::string, std::shared_ptr<SocketOwner>> owners_;  // by ActorId::hex()
};

}  // namespace cairn::detail
