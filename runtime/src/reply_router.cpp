// ReplyRouter: callbacks by correlation id, the process's registry of routers by node, and
// replies deferred past the directory's lock.
#include "reply_router.hpp"

#include <utility>

namespace cairn {
namespace {

std::mutex registry_mutex;
std::unordered_map<NodeId, ReplyRouter*>& registry() {
  static std::unordered_map<NodeId, ReplyRouter*> routers;
  return routers;
}

struct Deferred {
  std::shared_ptr<PendingReply> reply;
  Error error;
};
thread_local int defer_depth = 0;
thread_local std::vector<Deferred> deferred;

}  // namespace

NodeId ReplyRouter::next_node_id() {
  static std::atomic<NodeId> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

ReplyRouter::ReplyRouter(NodeId node) : node_(node) {
  std::lock_guard lock(registry_mutex);
  registry()[node_] = this;
}

ReplyRouter::~ReplyRouter() {
  {
    std::lock_guard lock(registry_mutex);
    registry().erase(node_);
  }
  for (auto& shard : shards_) {
    std::unordered_map<std::uint64_t, std::shared_ptr<PendingReply>> left;
    {
      std::lock_guard lock(shard.mutex);
      left.swap(shard.waiting);
    }
    for (auto& [correlation, reply] : left) {
      reply->fail(Error{Code::unavailable, "the runtime stopped before the actor answered"});
    }
  }
}

ReplyTo ReplyRouter::add(std::shared_ptr<PendingReply> reply) {
  std::uint64_t correlation = next_.fetch_add(1, std::memory_order_relaxed);
  auto& s = shard(correlation);
  std::lock_guard lock(s.mutex);
  s.waiting.emplace(correlation, std::move(reply));
  return ReplyTo{node_, correlation};
}

std::shared_ptr<PendingReply> ReplyRouter::find(ReplyTo to) const {
  auto& s = shard(to.correlation);
  std::lock_guard lock(s.mutex);
  auto it = s.waiting.find(to.correlation);
  return it == s.waiting.end() ? nullptr : it->second;
}

std::shared_ptr<PendingReply> ReplyRouter::take(ReplyTo to) {
  auto& s = shard(to.correlation);
  std::lock_guard lock(s.mutex);
  auto it = s.waiting.find(to.correlation);
  if (it == s.waiting.end()) return nullptr;
  auto reply = std::move(it->second);
  s.waiting.erase(it);
  return reply;
}

void ReplyRouter::answer(ReplyTo to, Response response) {
  if (auto reply = take(to)) reply->answer(std::move(response));
}

void ReplyRouter::answer(ReplyTo to, Result<nlohmann::json> result) {
  if (auto reply = take(to)) reply->answer(std::move(result));
}

void ReplyRouter::fail(ReplyTo to, const Error& error) {
  auto reply = take(to);
  if (!reply) return;
  if (!DeferReplies::defer(reply, error)) reply->fail(error);
}

std::size_t ReplyRouter::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.waiting.size();
  }
  return n;
}

void reply_dropped(ReplyTo to) noexcept { ReplyRouter::dropped(to); }

void ReplyRouter::dropped(ReplyTo to) noexcept {
  std::shared_ptr<PendingReply> reply;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry().find(to.node);
    // Another node's reply (cluster mode): its forwarding connection answers for it.
    if (it == registry().end()) return;
    reply = it->second->take(to);
  }
  if (!reply) return;
  Error error{Code::unavailable, "the actor stopped before answering"};
  if (!DeferReplies::defer(reply, error)) reply->fail(error);
}

DeferReplies::DeferReplies() { ++defer_depth; }

DeferReplies::~DeferReplies() {
  if (--defer_depth > 0 || deferred.empty()) return;
  auto list = std::exchange(deferred, {});
  for (auto& d : list) d.reply->fail(d.error);
}

bool DeferReplies::defer(std::shared_ptr<PendingReply> reply, const Error& error) {
  if (defer_depth == 0) return false;
  deferred.push_back({std::move(reply), error});
  return true;
}

}  // namespace cairn
