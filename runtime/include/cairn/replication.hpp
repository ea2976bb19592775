// Replication: every change to a shard's files goes to a second copy (the shard's follower)
// before anything it covers is acknowledged, so that losing the owner's disk loses nothing
// acknowledged (DESIGN, "Many machines"; cluster-notes.md, "Storage that survives a dead
// node").
//
// The layer is the file, as in LiteFS and dqlite: the actor databases' VFS
// (runtime/src/database_vfs.*) hands the Replicator every write, truncation and deletion of a
// file under <data>/_shards/NNNN/, in the order SQLite makes them, and every sync. A sync
// returns only once the follower has made durable everything of the shard queued before it
// (and the owner's own fsync is done: the two run at once). The storage pool's sync is what
// releases a batch's outputs, so the output gate covers replication unchanged; and because the
// follower applies the same operations and syncs at the same points, its copy is what the
// owner's disk would hold at any instant: a cut (the owner dies, the link breaks) leaves it as
// consistent as a power cut leaves the owner's own files.
//
// The follower side is ShardMirror: it applies a shard's operations to its copy under
// <root>/NNNN/ and refuses those of an epoch older than one it has seen for the shard (the
// fence: an owner that lost the shard can no longer make anything durable there).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn {

// One change to a file of a shard. `path` is relative to the shard's directory
// ("FLIGHT/<hex>.sqlite-wal"): no absolute path, no "..", no empty component.
struct ReplicaOp {
  // reset: every file of the shard's copy is removed (`path` names the shard's directory
  // itself: "."), the first operation of a seed. more: the last operation of a piece of a seed
  // that goes on in the run's next batch (path "."; see SeedReader).
  enum class Kind : std::uint8_t { write = 1, truncate = 2, remove = 3, sync = 4, reset = 5, more = 6 };
  Kind kind = Kind::write;
  std::string path;
  std::int64_t offset = 0;  // write: where; truncate: the new size
  std::string bytes;        // write only
};

// A shard's operations sent under one epoch, in order. A follower takes a shard's batches only
// in the order they were made: each seed (a batch that begins with a reset) opens a run,
// numbered by `seed` (increasing within an epoch), whose later batches are numbered by `index`
// (1, 2, ...). A batch that comes late (its sender gave up on it and seeded again) or out of
// order is refused, so it can never undo what a later batch made durable.
struct ReplicaBatch {
  unsigned shard = 0;
  std::int64_t epoch = 0;
  std::vector<ReplicaOp> ops;
  std::uint64_t seed = 0;
  std::uint64_t index = 0;
};

// Where a shard's stream stands: the epoch, run and batch of the last batch sent and applied.
// An owner that hands a shard to its follower (a graceful leave) sends everything queued, and
// the follower promotes its copy only if it applied exactly that far.
struct ReplicaPosition {
  std::int64_t epoch = 0;
  std::uint64_t seed = 0;
  std::uint64_t index = 0;
};

// The operations that make a follower's copy of a shard what its owner's files hold now:
// a reset, then every file under `shard_dir` written whole, truncated to its size and synced.
// Files changed while they are read may come out torn; the changes that tore them are queued
// behind the seed and mend them (each is applied after it, whole). Throws std::runtime_error
// if a file cannot be read.
std::vector<ReplicaOp> seed_ops(const std::filesystem::path& shard_dir);

// The same seed in pieces of about `piece_bytes` of file content each, so that a shard of any
// size is seeded in batches a follower takes (max_replication_batch_bytes) and in memory that
// does not grow with the shard. The first piece begins with the reset; a file larger than a
// piece is written in parts, and truncated and synced after its last part; every piece but
// the last ends with a `more`. Files are listed when the reader is made and read as the pieces
// are taken: a file changed meanwhile may come out torn, and is mended by the changes queued
// behind the seed, as with seed_ops. Throws std::runtime_error if a file cannot be read.
class SeedReader {
 public:
  SeedReader(std::filesystem::path shard_dir, std::size_t piece_bytes);
  // The next piece (the first call: the first piece, which may be the last).
  std::vector<ReplicaOp> next();
  // True once the last piece was taken.
  bool done() const { return done_; }

 private:
  std::filesystem::path dir_;
  std::size_t piece_bytes_;
  std::vector<std::string> files_;  // relative paths, in order
  std::size_t file_ = 0;            // the file being read
  std::int64_t offset_ = 0;         // how far into it
  bool started_ = false, done_ = false;
};

// The wire form of a batch (little-endian, length-prefixed; see replication.cpp). decode
// refuses anything malformed (a bad kind, a length past the end, a path that would leave the
// shard's directory) with a message, and never reads past `data`.
std::string encode(const ReplicaBatch& batch);
std::optional<ReplicaBatch> decode(std::string_view data, std::string& error);

// A path as a ReplicaOp may carry it (see ReplicaOp::path).
bool valid_replica_path(std::string_view path);

// The owner's side: the runtime calls it for every file of every shard (RuntimeOptions::
// replicator). write, truncate and remove are called from the thread that changes the file
// (an actor's, a storage thread's) and must not wait for the network: they queue. Their order
// per shard is the order of the calls.
class Replicator {
 public:
  virtual ~Replicator() = default;
  virtual void write(unsigned shard, const std::string& path, std::int64_t offset, std::string_view bytes) = 0;
  virtual void truncate(unsigned shard, const std::string& path, std::int64_t size) = 0;
  virtual void remove(unsigned shard, const std::string& path) = 0;
  // Starts making durable on the follower everything of `shard` queued so far, with a sync of
  // `path` after it; returns a ticket for wait(). Must not block for long (it may send).
  virtual std::uint64_t flush(unsigned shard, const std::string& path) = 0;
  // Blocks until the flush that gave `ticket` is durable on the follower: true; or false with
  // `error` if it is not and will not be (the follower refused it, or could not be reached in
  // time and the shard may not go on without it): the sync fails, and with it every batch it
  // covered (503), as when the owner's own fsync fails.
  virtual bool wait(unsigned shard, std::uint64_t ticket, std::string& error) = 0;
};

// The follower's side: a copy of each shard it follows, under <root>/NNNN/. Thread-safe;
// batches of one shard must be applied in the order they were sent.
class ShardMirror {
 public:
  enum class Outcome { applied, stale_epoch, failed };
  explicit ShardMirror(std::filesystem::path root);
  ~ShardMirror();
  ShardMirror(const ShardMirror&) = delete;
  ShardMirror& operator=(const ShardMirror&) = delete;

  // Applies the batch (in its run, see ReplicaBatch; one out of order fails and changes
  // nothing; the pieces of a seed, SeedReader, all go to the seed's copy beside this one): writes, truncations and deletions as they come (each file's bytes as
  // the owner wrote them), and each sync as an fdatasync of that file (and of its directory, the
  // first time after the file was made). Refuses (stale_epoch, nothing applied) a batch whose
  // epoch is older than the newest one seen for the shard; a newer one is recorded durably
  // before anything of its batch is applied. failed: an I/O error (`error` says which); if it
  // came part-way through, the copy of that shard misses changes and every later batch of it
  // fails too, until it is seeded again.
  Outcome apply(const ReplicaBatch& batch, std::string& error);
  // The newest epoch seen for `shard` (0: none).
  std::int64_t epoch(unsigned shard) const;
  // True if the copy of `shard` is whole: a seed of it was applied to its end (marked
  // `.whole`), and it was not promoted since. A seed is applied beside the copy (NNNN.seed)
  // and exchanged with it atomically once it is applied and synced, so a seed under way or cut
  // short leaves the copy before it whole. Only a whole copy may be promoted.
  bool whole(unsigned shard) const;
  // Failover: the copy of `shard` becomes this node's own, moved (renamed, durably) to
  // `target` (which must not exist). From then on every batch of the shard is refused as
  // stale (an owner that sends one is older than the claim this node is about to make)
  // until fence() or demote(). False, with `error`, if the copy is not whole or cannot move.
  bool promote(unsigned shard, const std::filesystem::path& target, std::string& error);
  // A hand-off's promote() (a graceful leave, cairn/cluster/membership.hpp): the same, only if
  // the copy applied exactly to `at` (it holds everything the owner wrote: the owner's shard
  // is closed and its queue was sent). handed() then says `at.epoch` until fence() or
  // demote(): a batch of that epoch comes later only if the hand-off did not go through.
  // With `sync` false the rename is not made durable here: the caller syncs the file system
  // (syncfs) once for a group of shards before it relies on any of them.
  bool promote(unsigned shard, const std::filesystem::path& target, const ReplicaPosition& at, std::string& error,
               bool sync = true);
  // The epoch of the owner that handed `shard` over (promote() with a position), 0 if none.
  std::int64_t handed(unsigned shard) const;
  // The same for a copy an earlier process of this node promoted already (the claim's outcome
  // was not known when it stopped): only the refusal of every batch is taken up again.
  void promoted(unsigned shard);
  // After promote(): the claim was made at `epoch`; the copy's fence is recorded durably
  // there (batches older than it stay refused after a restart, and a later owner's seed is
  // taken). False, with `error`, on an I/O error.
  bool fence(unsigned shard, std::int64_t epoch, std::string& error);
  // After promote(): the claim was refused; the files go back from `target` (the next batch
  // must be a seed).
  bool demote(unsigned shard, const std::filesystem::path& target, std::string& error);
  // <root>/NNNN
  std::filesystem::path shard_dir(unsigned shard) const;

 private:
  struct Shard;
  // The epoch and seed recorded in `file` (0, 0 if there is none); nullopt, with `error`, if it
  // exists but cannot be read.
  static std::optional<std::pair<std::int64_t, std::uint64_t>> read_epoch(const std::filesystem::path& file,
                                                                          std::string& error);
  Shard& shard_locked(unsigned shard);  // mutex_ held
  Shard& state_of(unsigned shard);      // takes mutex_
  // promote()'s state: every batch refused until fence() or demote() (the Shard's mutex held).
  static void hold_locked(Shard& state);
  bool promote_locked(unsigned shard, Shard& state, const std::filesystem::path& target, std::string& error,
                      bool sync);
  std::filesystem::path root_;
  mutable std::mutex mutex_;  // guards shards_ (each Shard has its own mutex for its files)
  std::map<unsigned, std::unique_ptr<Shard>> shards_;
};

// A Replicator whose follower is a ShardMirror in this process (tests): flush applies at once,
// on the caller's thread. The epoch of every batch is `epoch`. It does not read files to seed
// (HttpReplicator does): the owner's data directory must start empty; a shard's first batch
// only resets the copy.
class LocalReplicator final : public Replicator {
 public:
  LocalReplicator(std::shared_ptr<ShardMirror> mirror, std::int64_t epoch);
  void write(unsigned shard, const std::string& path, std::int64_t offset, std::string_view bytes) override;
  void truncate(unsigned shard, const std::string& path, std::int64_t size) override;
  void remove(unsigned shard, const std::string& path) override;
  std::uint64_t flush(unsigned shard, const std::string& path) override;
  bool wait(unsigned shard, std::uint64_t ticket, std::string& error) override;
  // Tests: after `operations` more operations reach the follower, the link is cut: later ones
  // are dropped and every later flush fails (the owner died, or lost its follower, there).
  void cut_after(std::uint64_t operations);
  std::uint64_t operations_applied() const;

 private:
  struct Queue {
    std::mutex send;  // held while a flush takes and applies the queue: batches stay in order
    std::uint64_t index = 0;  // of the last batch sent (0: none yet: the next one is a seed)
    std::vector<ReplicaOp> ops;
    std::uint64_t flushes = 0;
    std::map<std::uint64_t, std::string> failed;  // ticket -> why (kept until waited for)
    std::string broken;  // a batch failed: the follower misses changes, every later flush fails
  };
  Queue& queue(unsigned shard);
  void push(unsigned shard, ReplicaOp op);
  std::shared_ptr<ShardMirror> mirror_;
  std::int64_t epoch_;
  mutable std::mutex mutex_;  // guards queues_ and each Queue's ops, flushes and failed
  std::map<unsigned, std::unique_ptr<Queue>> queues_;
  std::uint64_t applied_ = 0;
  std::uint64_t cut_at_ = 0;  // 0: no cut armed
  bool cut_ = false;
};

}  // namespace cairn
