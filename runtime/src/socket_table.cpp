// SocketTable: reserve, accept, list, remove; owners and their auto-response rules.
#include "socket_table.hpp"

#include <algorithm>

#include "cairn/limits.hpp"

namespace cairn::detail {

SocketTable::~SocketTable() {
  for (auto& [hex, owner] : owners_) {
    std::lock_guard owner_lock(owner->mutex);
    owner->sockets.clear();
  }
  for (auto& [id, entry] : sockets_) entry->owner.reset();
}

SocketId SocketTable::reserve(std::shared_ptr<SocketSink> sink) {
  std::lock_guard lock(mutex_);
  SocketId id = next_id_++;
  sockets_.emplace(id, std::make_shared<SocketEntry>(id, std::move(sink)));
  return id;
}

Result<void> SocketTable::accept(SocketId id, const ActorId& owner, std::vector<std::string> tags) {
  if (tags.size() > limits::max_websocket_tags) {
    return fail(Code::invalid_argument,
                "a WebSocket may carry at most " + std::to_string(limits::max_websocket_tags) +
                    " tags (limits::max_websocket_tags), not " + std::to_string(tags.size()));
  }
  for (const auto& tag : tags) {
    if (tag.empty() || tag.size() > limits::max_websocket_tag_bytes) {
      return fail(Code::invalid_argument,
                  "a WebSocket tag must be 1 to " +
                      std::to_string(limits::max_websocket_tag_bytes) +
                      " bytes (limits::max_websocket_tag_bytes)");
    }
  }
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) {
    return fail(Code::invalid_argument, "the request carries no WebSocket upgrade to accept");
  }
  auto& entry = *it->second;
  if (entry.owner) {
    return fail(Code::invalid_argument, "this WebSocket has been accepted already");
  }
  auto& slot = owners_[owner.hex()];
  if (!slot) slot = std::make_shared<SocketOwner>(owner);
  std::lock_guard owner_lock(slot->mutex);
  if (slot->sockets.size() >= limits::max_websockets_per_actor) {
    return fail(Code::resource_exhausted,
                "an actor may have at most " + std::to_string(limits::max_websockets_per_actor) +
                    " open WebSockets (limits::max_websockets_per_actor)");
  }
  entry.tags = std::move(tags);  // before it can be listed
  slot->sockets.emplace(id, it->second);
  entry.owner = slot;
  return {};
}

void SocketTable::detach(SocketEntry& entry) {
  if (!entry.owner) return;
  auto owned = owners_.find(entry.owner->id.hex());
  if (owned != owners_.end()) {
    {
      std::lock_guard owner_lock(owned->second->mutex);
      owned->second->sockets.erase(entry.id);
    }
    drop_if_unused(owned);
  }
  entry.owner.reset();
}

void SocketTable::drop_if_unused(
    std::unordered_map<std::string, std::shared_ptr<SocketOwner>>::iterator it) {
  if (!it->second->rule && it->second->count() == 0) owners_.erase(it);
}

void SocketTable::unaccept(SocketId id) {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  detach(*it->second);
  it->second->tags.clear();
  it->second->attachment.clear();
}

void SocketTable::remove(SocketId id) {
  std::shared_ptr<SocketEntry> last_ref;  // released outside the lock
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return;
  detach(*it->second);
  last_ref = std::move(it->second);
  sockets_.erase(it);
}

std::vector<std::shared_ptr<SocketSink>> SocketTable::sinks(const std::vector<SocketId>& ids) const {
  std::vector<std::shared_ptr<SocketSink>> out;
  out.reserve(ids.size());
  std::lock_guard lock(mutex_);
  for (SocketId id : ids) {
    auto it = sockets_.find(id);
    out.push_back(it == sockets_.end() ? nullptr : it->second->sink);
  }
  return out;
}

std::shared_ptr<SocketEntry> SocketTable::find(SocketId id) const {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  return it == sockets_.end() ? nullptr : it->second;
}

SocketTable::Routing SocketTable::route(SocketId id) const {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(id);
  if (it == sockets_.end()) return {};
  Routing out{it->second, it->second->owner, nullptr};
  if (out.owner) out.rule = out.owner->rule;
  return out;
}

std::vector<std::shared_ptr<SocketEntry>> SocketTable::list(const std::string& owner_hex,
                                                            const std::string& tag) const {
  std::vector<std::shared_ptr<SocketEntry>> out;
  std::shared_ptr<SocketOwner> owner;
  {
    std::lock_guard lock(mutex_);
    auto owned = owners_.find(owner_hex);
    if (owned == owners_.end()) return out;
    owner = owned->second;
  }
  // Only this actor's lock while walking its sockets.
  std::lock_guard owner_lock(owner->mutex);
  out.reserve(owner->sockets.size());
  for (const auto& [id, entry] : owner->sockets) {
    if (tag.empty() || std::find(entry->tags.begin(), entry->tags.end(), tag) != entry->tags.end()) {
      out.push_back(entry);
    }
  }
  return out;
}

void SocketTable::set_rule(const ActorId& owner, std::shared_ptr<const AutoResponse> rule) {
  std::shared_ptr<const AutoResponse> old;  // released outside the lock
  std::lock_guard lock(mutex_);
  auto it = owners_.find(owner.hex());
  if (it == owners_.end()) {
    if (!rule) return;
    it = owners_.emplace(owner.hex(), std::make_shared<SocketOwner>(owner)).first;
  }
  old = std::exchange(it->second->rule, std::move(rule));
  drop_if_unused(it);
}

std::shared_ptr<const AutoResponse> SocketTable::rule(const std::string& owner_hex) const {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(owner_hex);
  return it == owners_.end() ? nullptr : it->second->rule;
}

void SocketTable::instance_stopped(const std::string& owner_hex) {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(owner_hex);
  if (it != owners_.end() && it->second->count() == 0) owners_.erase(it);
}

std::size_t SocketTable::size() const {
  std::lock_guard lock(mutex_);
  return sockets_.size();
}

std::vector<std::pair<ActorId, std::size_t>> SocketTable::owners() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<ActorId, std::size_t>> out;
  out.reserve(owners_.size());
  for (const auto& [hex, owner] : owners_) {
    if (auto n = owner->count(); n > 0) out.emplace_back(owner->id, n);
  }
  return out;
}

}  // namespace cairn::detail
