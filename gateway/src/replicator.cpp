// HttpReplicator (replicator.hpp).
#include "replicator.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http/verb.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <utility>

#include "handoff.hpp"
#include "peer.hpp"

namespace cairn::gateway {

HttpReplicator::HttpReplicator(HttpReplicatorOptions options)
    : options_(std::move(options)), senders_(options_.senders == 0 ? 1 : options_.senders) {
  if (!options_.follower || !options_.epoch) throw std::invalid_argument("HttpReplicator needs follower and epoch");
}

HttpReplicator::~HttpReplicator() { senders_.join(); }

HttpReplicator::Queue& HttpReplicator::queue(unsigned shard) {
  auto& slot = queues_[shard];
  if (!slot) slot = std::make_unique<Queue>();
  return *slot;
}

void HttpReplicator::push(unsigned shard, ReplicaOp op) {
  std::lock_guard lock(mutex_);
  queue(shard).ops.push_back(std::move(op));
}

void HttpReplicator::write(unsigned shard, const std::string& path, std::int64_t offset, std::string_view bytes) {
  push(shard, {ReplicaOp::Kind::write, path, offset, std::string(bytes)});
}
void HttpReplicator::truncate(unsigned shard, const std::string& path, std::int64_t size) {
  push(shard, {ReplicaOp::Kind::truncate, path, size, {}});
}
void HttpReplicator::remove(unsigned shard, const std::string& path) {
  push(shard, {ReplicaOp::Kind::remove, path, 0, {}});
}

std::uint64_t HttpReplicator::flush(unsigned shard, const std::string& path) {
  Queue* q = nullptr;
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(mutex_);
    q = &queue(shard);
    ticket = ++q->flushes;
  }
  // The follower's answer is due `timeout` after the sync asked, however long the batch waited
  // for the shard's earlier ones.
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  boost::asio::post(senders_, [this, shard, q, ticket, path, deadline] { send(shard, *q, ticket, path, deadline); });
  return ticket;
}

bool HttpReplicator::wait(unsigned shard, std::uint64_t ticket, std::string& error) {
  std::unique_lock lock(mutex_);
  auto& q = queue(shard);
  done_.wait(lock, [&] { return q.results.count(ticket) != 0; });
  auto result = std::move(q.results[ticket]);
  q.results.erase(ticket);
  if (!result) return true;
  error = std::move(*result);
  return false;
}

namespace {
std::string host_of(const std::string& address) { return address.substr(0, address.rfind(':')); }
std::string port_of(const std::string& address) {
  auto colon = address.rfind(':');
  return colon == std::string::npos ? "" : address.substr(colon + 1);
}
}  // namespace

std::unique_ptr<Peer> HttpReplicator::take_peer(const std::string& address, bool& reused) {
  {
    std::lock_guard lock(mutex_);
    auto& idle = peers_[address];
    if (!idle.empty()) {
      auto peer = std::move(idle.back());
      idle.pop_back();
      reused = true;
      return peer;
    }
  }
  reused = false;
  return std::make_unique<Peer>(host_of(address), port_of(address));
}

void HttpReplicator::give_peer(const std::string& address, std::unique_ptr<Peer> peer) {
  std::lock_guard lock(mutex_);
  peers_[address].push_back(std::move(peer));
}

void HttpReplicator::send(unsigned shard, Queue& q, std::uint64_t ticket, std::string path,
                          std::chrono::steady_clock::time_point deadline) {
  std::lock_guard in_order(q.send);
  bool applied = false, stale = false, seed = false;
  std::size_t bytes = 0;
  std::optional<std::string> error;
  try {
    error = send_batch(shard, q, std::move(path), deadline, applied, stale, seed, bytes);
  } catch (const std::exception& e) {
    // A job that throws would end the process (Asio's thread pool): the sync fails instead.
    error = std::string("cannot send the batch: ") + e.what();
  }
  if (error) {
    // Whatever the follower did not take, it may miss: the next batch is a seed.
    q.broken = *error;
    spdlog::error("replication: shard {}: {}", shard, *error);
  }
  std::lock_guard lock(mutex_);
  if (applied) {
    ++stats_.batches;
    stats_.bytes += bytes;
    stats_.seeds += seed ? 1 : 0;
  } else if (stale) {
    ++stats_.refused_stale;
  } else if (error) {
    ++stats_.failed;
  }
  q.results[ticket] = std::move(error);
  done_.notify_all();
}

std::optional<std::string> HttpReplicator::send_batch(unsigned shard, Queue& q, std::string path,
                                                      std::chrono::steady_clock::time_point deadline, bool& applied,
                                                      bool& stale, bool& seed, std::size_t& bytes) {
  ReplicaBatch batch{shard, 0, {}};
  {
    std::lock_guard lock(mutex_);
    batch.ops = std::exchange(q.ops, {});
  }
  auto epoch = options_.epoch(shard);
  if (!epoch) {
    // The changes taken are dropped with this batch: the next one must be a seed.
    return "this node does not own shard " + std::to_string(shard) + " now";
  }
  auto follower = options_.follower(shard);
  if (!follower) {
    q.broken = "the shard had no follower";  // what it gets later starts with a seed
    return std::nullopt;                     // the shard runs on this node's disk alone
  }
  for (int attempt = 0;; ++attempt) {
    seed = !q.broken.empty() || q.seeded != epoch || q.seeded_to != *follower;
    if (seed) {
      // Read after the queue was taken: every change taken is in the files (each is queued once
      // its write returned), so the seed replaces them; later ones follow it.
      char name[16];
      std::snprintf(name, sizeof name, "%04u", shard);
      batch.ops = seed_ops(options_.data_dir / "_shards" / name);
      batch.seed = ++q.seeds;
      batch.index = q.index = 0;
    } else {
      batch.seed = q.seeds;
      batch.index = ++q.index;
    }
    batch.ops.push_back({ReplicaOp::Kind::sync, std::move(path), 0, {}});
    batch.epoch = *epoch;
    auto body = encode(batch);
    batch.ops.clear();
    bytes = body.size();
    if (bytes > max_replication_batch_bytes) {
      return "a batch of " + std::to_string(bytes) + " bytes is over the " +
             std::to_string(max_replication_batch_bytes) + " a follower takes (a seed of a shard that large is not "
             "supported yet)";
    }
    bool reused = false;
    auto peer = take_peer(*follower, reused);
    auto answer = peer->send(boost::beast::http::verb::post, std::string(replicate_path), body, options_.token, deadline);
    if (!answer && reused && std::chrono::steady_clock::now() < deadline) {
      // A kept-alive connection the follower closed (it restarted, or timed it out): once more
      // on a new one. A batch applied twice leaves what it leaves once (every operation sets
      // bytes, a size or an absence, in order); a second copy of it is refused as out of order.
      peer = std::make_unique<Peer>(host_of(*follower), port_of(*follower));
      answer = peer->send(boost::beast::http::verb::post, std::string(replicate_path), std::move(body),
                          options_.token, deadline);
    }
    if (!answer) return "the follower " + *follower + " did not answer in time: " + answer.error().message;
    give_peer(*follower, std::move(peer));
    if (answer->result_int() == 200) {
      applied = true;
      q.broken.clear();
      if (seed) {
        q.seeded = epoch;
        q.seeded_to = *follower;
      }
      return std::nullopt;
    }
    stale = answer->result_int() == 409;
    std::string refused = "the follower " + *follower + " refused the batch (" + std::to_string(answer->result_int()) +
                          "): " + answer->body();
    // A follower that lost its place (it restarted, or a batch failed there) takes a seed: once,
    // within the same deadline. An older epoch (409) or a malformed batch is final.
    if (stale || seed || attempt > 0 || answer->result_int() != 503 || std::chrono::steady_clock::now() >= deadline) {
      return refused;
    }
    q.broken = refused;
  }
}

HttpReplicator::Stats HttpReplicator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace cairn::gateway
