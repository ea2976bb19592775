// ReplyRouter: one node's callbacks of callers waiting for answers, by correlation id. An
// event carries only a ReplyTo (node, correlation); whoever answers it (a host, the
// directory refusing it, or the event being dropped unanswered) goes through the router of
// the ReplyTo's node, which runs the callback exactly once. Thread-safe; sharded so callers
// on many threads do not meet on one lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "envelope.hpp"
#include "events.hpp"

namespace cairn {

class ReplyRouter {
 public:
  // Registers the router as `node`'s in this process (for ReplyTo::dropped below).
  explicit ReplyRouter(NodeId node);
  // Fails every callback still waiting (503): the node is going away.
  ~ReplyRouter();
  ReplyRouter(const ReplyRouter&) = delete;
  ReplyRouter& operator=(const ReplyRouter&) = delete;

  NodeId node() const noexcept { return node_; }
  // A new node id, unique in this process.
  static NodeId next_node_id();

  // Keeps `reply` until answered; returns its address.
  ReplyTo add(std::shared_ptr<PendingReply> reply);
  // The waiting reply of `to` (still registered), or null if it was answered already.
  std::shared_ptr<PendingReply> find(ReplyTo to) const;
  // Each removes the reply of `to` and answers it once (outside any lock; see DeferReplies).
  void answer(ReplyTo to, Response response);
  void answer(ReplyTo to, Result<nlohmann::json> result);
  void fail(ReplyTo to, const Error& error);
  // Replies waiting now.
  std::size_t size() const;

  // An event died unanswered (its destructor calls this): 503 through the router of
  // `to.node` in this process, if it still exists. Any thread.
  static void dropped(ReplyTo to) noexcept;

 private:
  std::shared_ptr<PendingReply> take(ReplyTo to);
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::uint64_t, std::shared_ptr<PendingReply>> waiting;
  };
  static constexpr std::size_t shard_count = 16;
  Shard& shard(std::uint64_t correlation) const { return shards_[correlation % shard_count]; }

  NodeId node_;
  std::atomic<std::uint64_t> next_{1};
  mutable std::array<Shard, shard_count> shards_;
};

// While one of these lives on a thread, replies failed on that thread (dropped events) wait
// and run when it ends: the directory holds its lock while it sends, and a callback may call
// back into the runtime (a Context::call reply does). Declare it before taking the lock.
class DeferReplies {
 public:
  DeferReplies();
  ~DeferReplies();
  DeferReplies(const DeferReplies&) = delete;
  DeferReplies& operator=(const DeferReplies&) = delete;
  // True if a DeferReplies lives on this thread: `reply` is then kept for its end.
  static bool defer(std::shared_ptr<PendingReply> reply, const Error& error);
};

}  // namespace cairn
