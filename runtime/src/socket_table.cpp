// SocketTable: reserve, accept, list, remove.
#include "socket_table.hpp"

#include <algorithm>

#include "cairn/limits.hpp"

namespace cairn {

SocketId SocketTable::reserve(std::shared_ptr<SocketSink> sink) {
  std::lock_guard lock(mutex_);
  SocketId id = next_id_++;
  sockets_.emplace(id, SocketInfo{std::move(sink), std::nullopt, {}});
  return id;
}

Result<void> SocketTable::accept(SocketId id, const ActorId& owner, std::vector<std::string> tags) {
  if (tags.size() > limits::max_websocket_tags) {
    return fail(Code::invalid_argument, "a WebSocket may carry at most " +
                                            std::to_string(limits::max_websocket_tags) + " tags");
  }
  for (const auto& tag : tags) {
    if (tag.empty() || tag.size() > limits::max_websocket_tag_bytes) {
      return fail(Code::invalid_argument,
                  "a WebSocket tag must be 1 to " +
                      std::to_string(limits::max_websocket_tag_bytes) + " bytes");
    }
  }
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) {
    return fail(Code::invalid_argument, "the request carries no WebSocket upgrade to accept");
  }
  if (it->second.owner) {
    return fail(Code::invalid_argument, "this WebSocket has been accepted already");
  }
  it->second.owner = owner;
  it->second.tags = std::move(tags);
  by_owner_[owner.hex()].insert(id);
  return {};
}

void SocketTable::unaccept(SocketId id) {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end() || !it->second.owner) return;
  auto owned = by_owner_.find(it->second.owner->hex());
  if (owned != by_owner_.end()) {
    owned->second.erase(id);
    if (owned->second.empty()) by_owner_.erase(owned);
  }
  it->second.owner.reset();
  it->second.tags.clear();
}

void SocketTable::remove(SocketId id) {
  std::shared_ptr<SocketSink> last_ref;  // released outside the lock
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  if (it->second.owner) {
    auto owned = by_owner_.find(it->second.owner->hex());
    if (owned != by_owner_.end()) {
      owned->second.erase(id);
      if (owned->second.empty()) by_owner_.erase(owned);
    }
  }
  last_ref = std::move(it->second.sink);
  sockets_.erase(it);
}

std::optional<SocketInfo> SocketTable::find(SocketId id) const {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<SocketSink> SocketTable::sink(SocketId id) const {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  return it == sockets_.end() ? nullptr : it->second.sink;
}

std::vector<std::pair<SocketId, std::vector<std::string>>> SocketTable::list(
    const std::string& owner_hex, const std::string& tag) const {
  std::vector<std::pair<SocketId, std::vector<std::string>>> out;
  std::lock_guard lock(mutex_);
  auto owned = by_owner_.find(owner_hex);
  if (owned == by_owner_.end()) return out;
  for (SocketId id : owned->second) {
    const auto& tags = sockets_.at(id).tags;
    if (tag.empty() || std::find(tags.begin(), tags.end(), tag) != tags.end()) {
      out.emplace_back(id, tags);
    }
  }
  return out;
}

std::size_t SocketTable::size() const {
  std::lock_guard lock(mutex_);
  return sockets_.size();
}

}  // namespace cairn
