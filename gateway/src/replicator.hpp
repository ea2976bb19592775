// HttpReplicator: the owner's side of replication over the network (cairn/replication.hpp).
// A shard's changes are queued as they are made; a sync hands the queue to a sender thread,
// which POSTs it as one batch to the follower's internal listener (/_cairn/replicate, with the
// cluster token, over a kept-alive connection) while the owner's own fsync runs, and the sync
// waits for the follower's answer, which comes after the follower's fsync.
//
// Seeding: the first batch of a shard in this process, the first after the epoch at which
// this node owns it changed, and the first after a failed one, is a seed (seed_ops in
// cairn/replication.hpp): the follower's copy is emptied and every file of the shard sent
// whole, then the changes queued since. Only then does a sync of that shard succeed, so
// nothing is acknowledged on a copy that misses a file made before, or a change lost with a
// failed batch.
//
// Followers and the in-sync set (cluster mode, cairn/cluster/membership.hpp): which node
// follows a shard, and whether the shard's replica record counts it in sync, are asked per
// sync (`follower`). While it is counted, a sync waits for the follower's answer; if the
// follower fails it (no answer within the timeout, a refusal), the owner drops it from the
// record (`record`, compare-and-set) before the sync returns: with min_replicas 1 the sync
// then succeeds on the owner's disk alone, which the record now says; with 2 it fails. While
// it is not counted, syncs do not wait for it (min_replicas 1) or fail at once (2), and the
// follower is caught up in the background: a seed, then what was queued during the seed
// (syncs wait for their batch from then on), and then the record counts it again. A failed
// catch-up is tried again after `retry_after`. catch_up() starts one for a shard nothing
// writes to.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "cairn/replication.hpp"
#include "cairn/result.hpp"

namespace cairn::gateway {

class Peer;

struct HttpReplicatorOptions {
  std::filesystem::path data_dir;  // the owner's: seeds are read from <data_dir>/_shards/NNNN
  struct Follower {
    std::string node;     // its id
    std::string address;  // its internal listener, HOST:PORT ("" if it is not live)
    bool in_sync = false;  // the shard's replica record counts it
  };
  // The follower of `shard`; nullopt: the shard has none (its syncs are this node's alone, or
  // fail with min_replicas 2).
  std::function<std::optional<Follower>(unsigned shard)> follower;
  // The epoch at which this node owns `shard`; nullopt: it does not (the batch fails).
  std::function<std::optional<std::int64_t>(unsigned shard)> epoch;
  // Counts `node` in the shard's in-sync set or not (Membership::record_in_sync): true when
  // the record says so now (for counted=false: or `node` is no longer the follower).
  std::function<Result<bool>(unsigned shard, const std::string& node, bool counted)> record;
  std::string token;  // the cluster token
  std::chrono::milliseconds timeout{2000};  // --replication-timeout
  std::chrono::milliseconds retry_after{1000};  // between catch-ups of a follower that failed
  int min_replicas = 1;                     // --min-replicas: 1 or 2
  std::size_t senders = 16;                 // batches in flight at once (over every shard)
  // A seed is sent in pieces of about this much file content (SeedReader).
  std::size_t seed_piece_bytes = std::size_t{16} << 20;
};

class HttpReplicator final : public Replicator {
 public:
  explicit HttpReplicator(HttpReplicatorOptions options);
  ~HttpReplicator() override;
  void write(unsigned shard, const std::string& path, std::int64_t offset, std::string_view bytes) override;
  void truncate(unsigned shard, const std::string& path, std::int64_t size) override;
  void remove(unsigned shard, const std::string& path) override;
  std::uint64_t flush(unsigned shard, const std::string& path) override;
  bool wait(unsigned shard, std::uint64_t ticket, std::string& error) override;
  // Starts catching up the follower of `shard` if the record does not count it in sync and
  // none is under way (the owner's periodic pass over its shards: one nothing writes to is
  // caught up too).
  void catch_up(unsigned shard);
  // A hand-off to the follower (graceful leave): sends everything of `shard` queued so far to
  // the follower the record counts in sync, each file it changed synced there, and says where
  // the stream then stands; an error if the follower is not counted or did not apply it. The
  // shard must take no events meanwhile (its hand-off closed it). Blocks on the network.
  Result<ReplicaPosition> settle(unsigned shard);

  struct Stats {
    std::uint64_t batches = 0;        // applied by a follower
    std::uint64_t bytes = 0;          // of those batches
    std::uint64_t refused_stale = 0;  // refused for an older epoch (409)
    std::uint64_t failed = 0;         // not applied (timeout, unreachable, follower's error)
    std::uint64_t seeds = 0;          // of the batches applied, seeds
    std::uint64_t seed_pieces = 0;    // the pieces those seeds were sent in (SeedReader)
    std::uint64_t dropped = 0;        // followers dropped from an in-sync set
    std::uint64_t caught_up = 0;      // followers counted in sync again
    std::uint64_t alone = 0;          // syncs acknowledged on the owner's disk alone
    // Lag: changes made here and not yet taken into a batch for a follower (bytes written),
    // and how long the oldest of them has waited.
    std::uint64_t lag_bytes = 0;
    double lag_seconds = 0;
  };
  Stats stats() const;

 private:
  struct Queue {
    std::mutex send;  // held while one batch of the shard is taken and sent: batches stay in order
    std::vector<ReplicaOp> ops;
    std::uint64_t queued_bytes = 0;                  // written by the ops (mutex_)
    std::chrono::steady_clock::time_point oldest{};  // when the first of them was queued
    std::uint64_t flushes = 0;
    std::map<std::uint64_t, std::optional<std::string>> results;  // ticket -> done (error if failed)
    // Signalled when a result lands: one per shard, so that a batch's answer wakes only the
    // syncs of its own shard (one for every replicator woke every storage thread waiting).
    std::condition_variable done;
    std::string broken;            // the last batch failed: the next one is a seed
    std::optional<std::int64_t> seeded;  // the epoch of the last seed that was applied
    std::string seeded_to;               // and the follower it went to
    std::uint64_t seeds = 0, index = 0;  // the run (seed) and the batch in it (ReplicaBatch)
    // Catching up a follower the record does not count: under way, and (hold) past its seed:
    // syncs wait for their batch from then on.
    bool catching = false, hold = false;
    std::chrono::steady_clock::time_point retry_at{};  // mutex_
    unsigned failures = 0;                             // in a row (mutex_)
    std::string failures_of;  // the follower they were against (mutex_): a new one starts afresh
    // Changes dropped by a sync acknowledged alone (mutex_): the next batch is a seed.
    bool dropped = false;
    // The follower etcd may count in sync as far as this replicator knows (mutex_): set before
    // it asks for it to be counted, cleared only once it is known not to be. While set, syncs
    // wait for that follower whatever the membership's view says (it may lag, or a request
    // whose answer was lost may have counted it).
    // Only for the epoch it was set at: a new claim of the shard either rewrote or deleted the
    // record (a takeover, a hand-off), or was made with the record read afresh (a re-join).
    std::string counted;
    std::int64_t counted_epoch = 0;
  };
  // True if `follower` must be waited for at `epoch` (mutex_ held).
  static bool counted_locked(const Queue& q, const std::optional<HttpReplicatorOptions::Follower>& follower,
                             std::optional<std::int64_t> epoch) {
    return follower && (follower->in_sync || (!q.counted.empty() && q.counted == follower->node && epoch &&
                                              q.counted_epoch == *epoch));
  }
  struct Sent {
    bool applied = false, stale = false, seed = false;
    std::size_t bytes = 0, pieces = 0;
    std::optional<std::string> error;
  };
  Queue& queue(unsigned shard);
  void push(unsigned shard, ReplicaOp op);
  void send(unsigned shard, Queue& q, std::uint64_t ticket, std::string path,
            std::chrono::steady_clock::time_point deadline);
  void run_catch_up(unsigned shard, Queue& q);
  // Sends `ops` (or a seed in their place, when one is due) as the shard's next batch, each
  // of `syncs` synced after them; q.send held.
  // `patient`: a seed (and what follows it) may take past `deadline`, each batch with a timeout
  // of its own (catch-ups, settles); otherwise all of it is due by `deadline` (a sync's batch).
  Sent transmit(unsigned shard, Queue& q, std::vector<ReplicaOp> ops, const std::vector<std::string>& syncs,
                const std::string& address, std::int64_t epoch, std::chrono::steady_clock::time_point deadline,
                bool patient);
  void count(const Sent& sent);
  // An idle connection to `address` (`reused`), or a new one.
  std::unique_ptr<Peer> take_peer(const std::string& address, bool& reused);
  void give_peer(const std::string& address, std::unique_ptr<Peer> peer);
  std::string too_few(unsigned shard) const;
  // The backoff is the follower's: a shard given a new one (its last one died) tries it at
  // once, not after the waits the dead one earned. mutex_ held.
  static void follow_locked(Queue& q, const std::string& node);
  static std::vector<ReplicaOp> take_locked(Queue& q);  // the queued changes (mutex_ held)
  // The wait before the next catch-up after a failure against `node` (mutex_ held).
  std::chrono::milliseconds backoff(Queue& q, const std::string& node) const;
  using Answer = boost::beast::http::response<boost::beast::http::string_body>;
  // POSTs one encoded batch to the follower's /_cairn/replicate over a kept-alive connection.
  Result<Answer> post(const std::string& address, std::string body, std::chrono::steady_clock::time_point deadline);

  HttpReplicatorOptions options_;
  mutable std::mutex mutex_;  // guards queues_, each Queue's ops/flushes/results, stats_, peers_
  std::map<unsigned, std::unique_ptr<Queue>> queues_;
  std::map<std::string, std::vector<std::unique_ptr<Peer>>> peers_;  // idle connections
  Stats stats_;
  boost::asio::thread_pool senders_;
  // Catch-ups (seeds) on threads of their own: a sync's batch never waits behind another
  // shard's seed.
  boost::asio::thread_pool catchers_{4};
};

}  // namespace cairn::gateway
