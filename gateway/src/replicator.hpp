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
// What it does not decide: which node follows a shard (`follower`) and under which epoch this
// node owns it (`epoch`) are asked per batch. A batch the follower refuses for its epoch, or
// does not answer within the timeout, fails its sync, and the shard's link stays broken (every
// later sync fails: the follower may have missed changes) until the follower is seeded again.
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

#include "cairn/replication.hpp"

namespace cairn::gateway {

class Peer;

struct HttpReplicatorOptions {
  std::filesystem::path data_dir;  // the owner's: seeds are read from <data_dir>/_shards/NNNN
  // The follower of `shard` as "host:port" (its internal listener); nullopt: the shard has
  // none and its syncs are this node's alone.
  std::function<std::optional<std::string>(unsigned shard)> follower;
  // The epoch at which this node owns `shard`; nullopt: it does not (the batch fails).
  std::function<std::optional<std::int64_t>(unsigned shard)> epoch;
  std::string token;  // the cluster token
  std::chrono::milliseconds timeout{2000};  // --replication-timeout
  std::size_t senders = 16;                 // batches in flight at once (over every shard)
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

  struct Stats {
    std::uint64_t batches = 0;        // applied by a follower
    std::uint64_t bytes = 0;          // of those batches
    std::uint64_t refused_stale = 0;  // refused for an older epoch (409)
    std::uint64_t failed = 0;         // not applied (timeout, unreachable, follower's error)
    std::uint64_t seeds = 0;          // of the batches applied, seeds
  };
  Stats stats() const;

 private:
  struct Queue {
    std::mutex send;  // held while one batch of the shard is taken and sent: batches stay in order
    std::vector<ReplicaOp> ops;
    std::uint64_t flushes = 0;
    std::map<std::uint64_t, std::optional<std::string>> results;  // ticket -> done (error if failed)
    std::string broken;            // the last batch failed: the next one is a seed
    std::optional<std::int64_t> seeded;  // the epoch of the last seed that was applied
    std::string seeded_to;               // and the follower it went to
    std::uint64_t seeds = 0, index = 0;  // the run (seed) and the batch in it (ReplicaBatch)
  };
  Queue& queue(unsigned shard);
  void push(unsigned shard, ReplicaOp op);
  void send(unsigned shard, Queue& q, std::uint64_t ticket, std::string path,
            std::chrono::steady_clock::time_point deadline);
  // send()'s work; throws what it cannot handle (send() fails the ticket with it).
  std::optional<std::string> send_batch(unsigned shard, Queue& q, std::string path,
                                        std::chrono::steady_clock::time_point deadline, bool& applied, bool& stale,
                                        bool& seed, std::size_t& bytes);
  // An idle connection to `address` (`reused`), or a new one.
  std::unique_ptr<Peer> take_peer(const std::string& address, bool& reused);
  void give_peer(const std::string& address, std::unique_ptr<Peer> peer);

  HttpReplicatorOptions options_;
  mutable std::mutex mutex_;  // guards queues_, each Queue's ops/flushes/results, stats_, peers_
  std::condition_variable done_;
  std::map<unsigned, std::unique_ptr<Queue>> queues_;
  std::map<std::string, std::vector<std::unique_ptr<Peer>>> peers_;  // idle connections
  Stats stats_;
  boost::asio::thread_pool senders_;
};

}  // namespace cairn::gateway
