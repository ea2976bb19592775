// RuntimeCore: the admin API's way into the directory (operations run on actors' hosts).
#include "runtime_core.hpp"

#include <caf/all.hpp>

#include "cairn/limits.hpp"

namespace cairn::detail {

Result<nlohmann::json> RuntimeCore::admin(const ActorId& id, AdminEvent::Op op, std::string text,
                                          std::size_t max_rows, bool create, AdminFacts* facts) {
  auto done = std::make_shared<std::promise<Result<nlohmann::json>>>();
  auto answer = done->get_future();
  bool was_live = false;
  std::optional<std::int64_t> last_event;
  // Looked up before the directory lock: the names index may be busy with an fsync or a
  // scan, and the directory serves every request.
  if (!owned_epoch(id.shard())) {
    return fail(Code::unavailable, "actor " + id.binding() + "'s shard " + std::to_string(id.shard()) +
                                       " is not served by this node now (cluster mode: ask its owner)");
  }
  bool named = create || names_->contains(id.hex());
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fail(Code::unavailable, "the runtime is shutting down");
    if (!admits(id.shard())) {
      return fail(Code::unavailable, "actor " + id.binding() + "'s shard " + std::to_string(id.shard()) +
                                         " is moving to another node; ask again shortly");
    }
    if (registry.find(id.binding()) == nullptr) return fail(Code::not_found, "no actor class is bound to '" + id.binding() + "'");
    Entry* entry = find_locked(id.hex());
    // A deleted actor may still have a host that is leaving: the files decide.
    if (!named) {
      std::error_code ec;
      if (!std::filesystem::exists(database_file(id), ec)) {
        return fail(Code::not_found, "actor " + id.binding() + " '" + id.name().substr(0, 64) +
                                         "' does not exist (no database)");
      }
    }
    if (entry != nullptr && !entry->admin_only) {
      last_event = entry->last_used.load(std::memory_order_relaxed);
    } else if (auto known = last_event_.find(id.hex()); known != last_event_.end()) {
      last_event = known->second;
    }
    Event event{AdminEvent{op, std::move(text), max_rows, done}};
    if (entry == nullptr) {
      // Spawned for the operator only: it leaves memory right after.
      entry = &emplace_locked(id);
      entry->waiting.push_back(std::move(event));
      start_locked(*entry, /*for_admin=*/true);
      evict_locked(*entry, Why::admin);
    } else if (entry->stopping) {
      entry->waiting.push_back(std::move(event));  // for its next host, as any event
    } else {
      was_live = !entry->admin_only;
      // Spawned for the operator, or deleting the actor: it leaves memory right after (a
      // request after the delete gets a fresh instance with a fresh database).
      send_locked(*entry, std::move(event), /*then_evict=*/!was_live || op == AdminEvent::Op::remove);
    }
  }
  if (answer.wait_for(limits::admin_operation_timeout) != std::future_status::ready) {
    return fail(Code::timeout, "the actor did not run the operation within " +
                                   std::to_string(limits::admin_operation_timeout.count()) + " s");
  }
  Result<nlohmann::json> result = fail(Code::unavailable, "the actor stopped before answering");
  try {
    result = answer.get();
  } catch (const std::future_error&) {
    return result;  // the event died with its host (shutdown)
  }
  if (facts != nullptr) {
    facts->live = was_live;
    if (last_event) {
      facts->last_event_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration{*last_event}).count();
    }
  }
  return result;
}

std::vector<std::pair<std::string, std::size_t>> RuntimeCore::live_by_binding() const {
  std::map<std::string, std::size_t> counts;
  std::lock_guard lock(mutex_);
  for_each_locked([&](const std::string&, const Entry& entry) {
    if (!entry.stopping && !entry.admin_only) ++counts[entry.id.binding()];
  });
  return {counts.begin(), counts.end()};
}

bool RuntimeCore::is_live(const std::string& hex) const {
  std::lock_guard lock(mutex_);
  const Entry* entry = find_locked(hex);
  return entry != nullptr && !entry->stopping && !entry->admin_only;
}

}  // namespace cairn::detail
