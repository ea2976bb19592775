// ShardMover: cluster mode's hand-off of shards between live nodes (DESIGN, "Many machines";
// the keys in cairn/cluster/membership.hpp). A move of shard S from this node to node T:
//   1. S stops taking events here (Ownership::admits false: they are refused, 503) and the
//      gateway treats it as ownerless (requests for it wait and are forwarded once S has its
//      new owner); what was queued runs, and S's instances are evicted until none is open.
//   2. Each actor database of S is copied with SQLite's online backup API (its files are
//      closed by then; the backup reads a consistent state whatever the WAL holds) and sent
//      to T's internal listener, then S's rows of this node's alarm and names indexes with a
//      commit: T installs the files in its _shards/NNNN (replacing any stale copy), makes
//      them durable and adopts the rows, before it answers.
//   3. One etcd transaction, valid only while this node owns S at its epoch, assigns S to T
//      and deletes this node's claim and the move (Membership::hand_over); T claims S.
//   4. S's WebSockets here are closed with 1012 (clients reconnect through any node), its
//      rows and files here are removed.
// A failure before step 3 leaves S here (served again at once) and drops the move.
// Replicated (--replicate): a shard whose follower is T and counted in sync is not copied.
// In step 2 this node sends T everything of S still queued (HttpReplicator::settle) and
// asks T to promote its copy (POST .../promote with where the stream stands): T does only if
// its copy applied exactly that far, moves it into _shards/NNNN and rebuilds S's index rows
// from its files. A hand-off that fails after that has T put the copy back (abort, or the
// next batch of S at the epoch it was handed at, which only an owner that kept S can send).
// Moves run one group (up to 24 shards bound for one node) at a time, on the mover's thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/cluster/membership.hpp"
#include "cairn/http.hpp"
#include "cairn/metrics.hpp"
#include "cairn/replication.hpp"
#include "cairn/result.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

// The largest actor database a hand-off sends (in one request body, held in memory).
inline constexpr std::size_t max_handoff_file_bytes = std::size_t{1} << 30;
inline constexpr std::string_view handoff_path_prefix = "/_cairn/handoff/";
// Replication batches from the owners of the shards this node follows (cairn/replication.hpp).
inline constexpr std::string_view replicate_path = "/_cairn/replicate";
// A batch carries one sync's worth of a shard's changes: a checkpoint's pages (SQLite's
// 1,000-page threshold, 4 MiB of 4 KiB pages) and its WAL's growth, with room to spare.
inline constexpr std::size_t max_replication_batch_bytes = std::size_t{64} << 20;

// The identity of the data directory (<data_dir>/_cairn/identity, 32 random hex digits,
// made durably on first use): the cluster records which directory a node's shards are in
// (MembershipOptions::data_id). Throws std::runtime_error.
std::string data_identity(const std::filesystem::path& data_dir);

class ShardMover {
 public:
  struct Options {
    std::string token;  // the cluster token, sent to the target's internal listener
    std::chrono::milliseconds drain_timeout{10000};     // for a shard's instances to close
    std::chrono::milliseconds transfer_timeout{60000};  // for one group's files and commit
    // Replication (all three set, or none). The owner's side: sends what is queued of `shard`
    // to its in-sync follower (HttpReplicator::settle).
    std::function<Result<ReplicaPosition>(unsigned shard)> settle;
    // The target's side: makes the follower's copies of `shards` this node's for hand-off
    // `move` (all or none), each if it applied exactly to its position, with their index rows
    // (each is claimed once assigned).
    std::function<Result<void>(const std::vector<std::pair<unsigned, ReplicaPosition>>& shards,
                               const std::string& move)>
        promote;
    // Undoes promote() for `move` (its hand-off did not go through).
    std::function<void(unsigned shard, const std::string& move)> demote;
  };
  // Starts the mover's thread. Removes what an interrupted hand-off left in
  // <data_dir>/_cairn/incoming and /trash.
  ShardMover(Runtime& runtime, cluster::Membership& membership, std::filesystem::path data_dir,
             Options options);
  // Stops the thread (a move under way finishes or fails first).
  ~ShardMover();
  // The same, before the runtime stops: no move starts after this. Idempotent.
  void stop();
  ShardMover(const ShardMover&) = delete;
  ShardMover& operator=(const ShardMover&) = delete;

  // Ownership::admits: false while `shard` is being handed over. Lock-free.
  bool admits(unsigned shard) const { return !closed_[shard % ActorId::shard_count].load(); }

  // Membership's owner change for `shard` (its watch's thread): a shard handed away and
  // now owned here again, at a new epoch, opens.
  void owner_changed(unsigned shard);

  // The target's side: the internal listener's requests under /_cairn/handoff/ (file,
  // commit, abort). Blocks on the disk: call it off the I/O threads.
  Response receive(const Request& request);
  // Runs `work` while no hand-off to this node commits, promotes or aborts (the start-up and
  // periodic sweeps of stale copies: none of them can see a hand-off half done).
  void exclusive(const std::function<void()>& work);

  // SIGTERM: says in etcd that this node leaves, asks for its shards to be moved to the
  // others and waits until it owns none, or `limit` passed. Returns how many it still owns
  // (they wait for this node to come back, as after a crash).
  std::size_t leave(std::chrono::milliseconds limit);

  void write_metrics(metrics::TextWriter& out) const;

 private:
  void loop();
  // Moves `shards` (all bound for `to`); true if they went.
  bool move_group(const std::string& to, const std::vector<unsigned>& shards);

  Response receive_file(const Request& request);
  Response receive_commit(const Request& request);
  Response receive_promote(const Request& request);
  Response receive_abort(const Request& request);
  // Removes what transfers that never committed left in incoming/ (older than an hour).
  void clear_stale_incoming();

  Runtime& runtime_;
  cluster::Membership& membership_;
  std::filesystem::path data_dir_;
  Options options_;
  std::array<std::atomic<bool>, ActorId::shard_count> closed_{};
  std::array<std::atomic<bool>, ActorId::shard_count> busy_{};  // a move of it is under way
  std::array<std::atomic<std::int64_t>, ActorId::shard_count>
      handed_epoch_{};  // its epoch when it left
  // The mover's thread only: a shard whose move failed waits (1 s, doubling up to 30 s).
  std::array<std::chrono::steady_clock::time_point, ActorId::shard_count> retry_at_{};
  std::array<std::chrono::steady_clock::duration, ActorId::shard_count> backoff_{};
  std::atomic<bool> leaving_{false};  // leave() or stop() began: it takes no shard
  std::mutex receive_mutex_;          // one commit at a time (and no file written into one)
  // The shards each recent hand-off promoted here (receive_mutex_): an abort puts them back.
  std::deque<std::pair<std::string, std::vector<unsigned>>> promoted_by_move_;  // oldest first
  // Moves aborted lately (receive_mutex_): a promotion of one that comes after its abort (the
  // requests ran on different threads) is refused.
  std::deque<std::string> aborted_;

  std::atomic<std::uint64_t> moved_out_{0}, moved_in_{0}, groups_done_{0}, groups_failed_{0};
  std::atomic<std::uint64_t> bytes_out_{0}, bytes_in_{0};
  std::atomic<std::uint64_t> promoted_out_{0}, promoted_in_{0};  // shards handed without a copy
  std::atomic<double> seconds_total_{0}, last_seconds_{0};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cairn::gateway
