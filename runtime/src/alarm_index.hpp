// AlarmIndex: the runtime's index of pending alarms, one row per actor with the time its
// soonest alarm is due, kept in <data>/_cairn/alarms.sqlite and mirrored in memory as the
// scheduler's queue. It lets start-up find due alarms without opening every actor's
// database. The actor's own `_cairn_alarms` table is the truth: the index may only be early
// (a wake that finds nothing due just reports the truth back), never late. So a commit that
// brings an actor's soonest alarm forward writes the index durably first (before_commit);
// one that pushes it back or clears it writes it lazily after (after_commit).
// Durable writes from many hosts share one transaction and one fsync (group commit).
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/runtime.hpp"

struct sqlite3;

namespace cairn::detail {

class AlarmIndex {
 public:
  using Ticks = std::int64_t;  // Clock::time_point ticks since the epoch

  // Opens (creating) the index at `file` and loads it into the queue. Rows of bindings
  // `known` rejects are logged and left alone. Throws std::runtime_error.
  AlarmIndex(const std::filesystem::path& file, Durability durability,
             const std::function<bool(const std::string&)>& known);
  ~AlarmIndex();
  AlarmIndex(const AlarmIndex&) = delete;
  AlarmIndex& operator=(const AlarmIndex&) = delete;

  // Before an actor's commit: its soonest alarm will be `next`. If that is sooner than the
  // index has, the index is written and fsync'd before this returns. Throws on failure (the
  // caller must then not commit).
  void before_commit(const ActorId& id, std::optional<Ticks> next);
  // After the commit: `next` is the truth. Queues it for the scheduler and for a lazy write.
  // True if it is now the soonest in the queue (the scheduler should look again).
  bool after_commit(const ActorId& id, std::optional<Ticks> next);

  // The actors due at `now`, soonest first, at most `max`; each stays queued at
  // `retry_at` until its host reports back through after_commit().
  std::vector<ActorId> take_due(Ticks now, Ticks retry_at, std::size_t max);
  // When the soonest queued alarm is due.
  std::optional<Ticks> next_due() const;
  std::size_t size() const;

  // Cluster hand-off. The actors of `shard` with an alarm queued, each with the soonest of
  // its queued and indexed times (early is safe, late is not).
  std::vector<std::pair<ActorId, Ticks>> of_shard(unsigned shard) const;
  // Adds `id` due at `due` (from the node the shard came from): written and fsync'd before
  // this returns, then queued. True if it is now the soonest (the scheduler should look
  // again). Throws std::runtime_error.
  bool adopt(const ActorId& id, Ticks due);
  // Forgets every actor of `shard` (it moved to another node): off the queue, and off the
  // file before this returns. Throws std::runtime_error.
  void forget_shard(unsigned shard);

  // Writes the lazy changes (one transaction). Logs failures; they are tried again later.
  void flush();
  // Flushes and closes the file (the runtime stopped). Writes after this fail.
  void close();

 private:
  struct Item {
    ActorId id;
    Ticks due;
  };
  struct Write {
    ActorId id;
    std::optional<Ticks> due;
  };
  struct Batch {
    bool done = false;
    std::string error;
  };

  void queue_locked(const ActorId& id, std::optional<Ticks> due);
  // Runs as the group's writer: takes every pending write, writes them in one transaction
  // with `lock` released, publishes the outcome. Called with `lock` held, returns with it.
  void write_pending(std::unique_lock<std::mutex>& lock);
  void write_rows(const std::vector<Write>& writes);
  // Waits until what is pending now is written (writing it if no one is). Throws.
  void write_now(std::unique_lock<std::mutex>& lock);

  sqlite3* db_ = nullptr;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Item> items_;  // by hex: the scheduler's queue
  std::set<std::pair<Ticks, std::string>> queue_;
  std::unordered_map<std::string, Ticks> durable_;  // what the file holds
  std::map<std::string, Write> pending_;           // not yet written, by hex
  std::unordered_map<std::string, std::optional<Ticks>> in_flight_;  // being written now: hex -> due
  std::shared_ptr<Batch> next_batch_ = std::make_shared<Batch>();
  bool writing_ = false;
  std::condition_variable written_;
};

}  // namespace cairn::detail
