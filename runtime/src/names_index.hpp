// NamesIndex: every actor the runtime has ever opened a database for, by binding and name,
// in <data>/_cairn/names.sqlite. Hosts record an actor before they first open (and so
// create) its database, and make the record durable before the database's first batch is
// acknowledged (its first sync pays for it, off the actor's thread), so every database with
// acknowledged data has its name here: the admin API lists actors by name from it, evicted
// ones and ones not woken since a restart included. Records from many hosts share one
// transaction (group commit) and one fsync (sync_through); an actor already recorded costs a
// lookup in memory. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/runtime.hpp"

struct sqlite3;
struct sqlite3_vfs;

namespace cairn {
class Sql;
}

namespace cairn::detail {

class NamesIndex {
 public:
  struct Name {
    std::string binding;
    std::string name;
    std::string hex;
    std::int64_t created_ms = 0;  // Unix milliseconds (system clock) of the first record
  };

  // Opens (creating) the index, and syncs what a previous process may have left unsynced.
  // Throws std::runtime_error.
  explicit NamesIndex(const std::filesystem::path& file);
  ~NamesIndex();
  NamesIndex(const NamesIndex&) = delete;
  NamesIndex& operator=(const NamesIndex&) = delete;

  // Writes `id` to the index (returns at once if it is there), without waiting for the disk:
  // returns what to pass to sync_through() before anything of the actor is acknowledged
  // (0: nothing, the record is durable). Throws SqlError.
  std::uint64_t record(const ActorId& id);
  // Makes durable every change up to `version` (a record()'s result): one fsync of the index's
  // WAL, shared by the callers that wait meanwhile. False, with `error`, if it failed (the
  // rows it covered are written again before the next sync).
  bool sync_through(std::uint64_t version, std::string& error);
  // Forgets `id` (the actor was deleted), durably. Throws SqlError.
  void remove(const ActorId& id);
  bool contains(const std::string& hex) const;

  // Names of `binding` starting with `prefix`, after `after` (exclusive), in byte order,
  // at most `limit`.
  std::vector<Name> list(const std::string& binding, const std::string& prefix,
                         const std::string& after, std::size_t limit) const;
  // How many actors each binding has.
  std::vector<std::pair<std::string, std::size_t>> counts() const;
  // Every name (for a backup), in (binding, name) order.
  std::vector<Name> all() const;
  // Cluster hand-off: the names of `shard` (all(), filtered).
  std::vector<Name> of_shard(unsigned shard) const;
  // Adds names from the node a shard came from (one transaction, durable on return); names
  // already here stay as they are. Throws SqlError.
  void adopt(const std::vector<Name>& names);
  // Forgets every name of `shard` (it moved to another node). Throws SqlError.
  void forget_shard(unsigned shard);
  // A consistent copy of the index file at `file` (SQLite's online backup). Throws SqlError.
  void backup_to(const std::filesystem::path& file) const;
  // Closes the file (the runtime stopped): records then fail, lists are empty.
  void close();

 private:
  void write_pending(std::unique_lock<std::mutex>& lock);
  // Until every change up to `version` is durable: syncs the WAL, or waits for a sync under way,
  // or first writes the rows of a failed sync again (mutex_ held, released while the disk
  // works). Throws SqlError.
  void sync_upto(std::unique_lock<std::mutex>& lock, std::uint64_t version);
  void sync_locked(std::unique_lock<std::mutex>& lock);
  void rewrite_unsynced(std::unique_lock<std::mutex>& lock);
  // The names are gone from the file (mutex_ held).
  void forget_locked(const std::vector<std::string>& hexes);
  // Runs `work` in one transaction of the file (mutex_ held, no group write running).
  // Runs `committed` (mutex_ still held) after the COMMIT, then syncs.
  void in_transaction(std::unique_lock<std::mutex>& lock, const std::function<void(Sql&)>& work,
                      const std::function<void()>& committed);

  sqlite3* db_ = nullptr;
  mutable std::mutex mutex_;  // guards everything below and the connection
  std::unordered_set<std::string> known_;  // hex of every recorded actor
  std::vector<Name> pending_;               // waiting for the next group write
  std::uint64_t queued_ = 0;                // records queued so far
  std::uint64_t written_ = 0;               // of them, written (or failed)
  std::uint64_t version_ = 0;               // changes committed to the file so far
  std::uint64_t synced_ = 0;                // of them, durable
  struct Unsynced {
    std::uint64_t version;  // the change that wrote it: a sync that began after it covers it
    Name name;
  };
  std::vector<Unsynced> unsynced_;          // rows written and not yet covered by a sync
  bool rewrite_ = false;                    // a sync failed: write unsynced_ again first
  bool syncing_ = false;
  sqlite3_vfs* vfs_ = nullptr;              // the file's VFS and WAL, for sync_wal()
  std::string wal_;
  std::string last_error_;                  // of the last failed group write
  bool writing_ = false;
  mutable std::condition_variable done_;
};

}  // namespace cairn::detail
