// HttpReplicator (replicator.hpp).
#include "replicator.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http/verb.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <set>
#include <stdexcept>
#include <utility>

#include "handoff.hpp"
#include "peer.hpp"

namespace cairn::gateway {

HttpReplicator::HttpReplicator(HttpReplicatorOptions options)
    : options_(std::move(options)), senders_(options_.senders == 0 ? 1 : options_.senders) {
  if (!options_.follower || !options_.epoch || !options_.record) {
    throw std::invalid_argument("HttpReplicator needs follower, epoch and record");
  }
  if (options_.min_replicas < 1 || options_.min_replicas > 2) throw std::invalid_argument("min_replicas is 1 or 2");
}

HttpReplicator::~HttpReplicator() {
  catchers_.join();
  senders_.join();
}

HttpReplicator::Queue& HttpReplicator::queue(unsigned shard) {
  auto& slot = queues_[shard];
  if (!slot) slot = std::make_unique<Queue>();
  return *slot;
}

void HttpReplicator::push(unsigned shard, ReplicaOp op) {
  std::lock_guard lock(mutex_);
  auto& q = queue(shard);
  if (q.ops.empty()) q.oldest = std::chrono::steady_clock::now();
  q.queued_bytes += op.bytes.size();
  q.ops.push_back(std::move(op));
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

std::chrono::milliseconds HttpReplicator::backoff(Queue& q, const std::string& node) const {
  // A failure against a follower the shard no longer has (a batch to the dead one that ended
  // after the new one was given) is not the new one's: it is tried at once.
  if (node != q.failures_of) return std::chrono::milliseconds(0);
  // Doubled after each failure in a row, up to 32 times retry_after: a follower that stays
  // down, or a shard too large to seed, is not read whole every second.
  auto wait = options_.retry_after * (std::int64_t{1} << std::min<unsigned>(q.failures, 5));
  ++q.failures;
  return wait;
}

void HttpReplicator::follow_locked(Queue& q, const std::string& node) {
  if (q.failures_of == node) return;
  q.failures_of = node;
  q.failures = 0;
  q.retry_at = {};
}

std::string HttpReplicator::too_few(unsigned shard) const {
  return "shard " + std::to_string(shard) +
         " has fewer than 2 replicas in sync (--min-replicas 2) while its follower is seeded: retry";
}

std::uint64_t HttpReplicator::flush(unsigned shard, const std::string& path) {
  // Outside mutex_: they take the membership's lock.
  auto epoch = options_.epoch(shard);
  auto follower = options_.follower(shard);
  Queue* q = nullptr;
  std::uint64_t ticket = 0;
  bool start_catch_up = false;
  {
    std::lock_guard lock(mutex_);
    q = &queue(shard);
    ticket = ++q->flushes;
    if (!epoch) {
      // Not this node's now (or fenced): nothing may be acknowledged; what was queued goes.
      if (!q->catching) (void)take_locked(*q);
      q->dropped = true;
      q->results[ticket] = "this node does not own shard " + std::to_string(shard) + " now";
      return ticket;
    }
    if (follower) follow_locked(*q, follower->node);
    if (!counted_locked(*q, follower, epoch) && !q->hold) {
      // The record counts no follower: this sync is the owner's alone (or, with
      // --min-replicas 2, refused). What was queued goes (the follower gets a seed first),
      // unless a catch-up is under way: what was written after its seed read the files
      // follows the seed, and nothing acknowledged here may be missing from it.
      if (!q->catching) {
        (void)take_locked(*q);
        q->dropped = true;
      }
      if (options_.min_replicas >= 2) {
        q->results[ticket] = too_few(shard);
      } else {
        q->results[ticket] = std::nullopt;
        ++stats_.alone;
      }
      if (follower && !follower->address.empty() && !q->catching &&
          std::chrono::steady_clock::now() >= q->retry_at) {
        q->catching = start_catch_up = true;
      }
      if (start_catch_up) boost::asio::post(catchers_, [this, shard, q] { run_catch_up(shard, *q); });
      return ticket;
    }
  }
  // The follower's answer is due `timeout` after the sync asked, however long the batch waited
  // for the shard's earlier ones.
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  boost::asio::post(senders_, [this, shard, q, ticket, path, deadline] { send(shard, *q, ticket, path, deadline); });
  return ticket;
}

void HttpReplicator::catch_up(unsigned shard) {
  auto epoch = options_.epoch(shard);
  auto follower = options_.follower(shard);
  if (!epoch || !follower || follower->in_sync || follower->address.empty()) return;
  std::lock_guard lock(mutex_);
  auto& q = queue(shard);
  follow_locked(q, follower->node);
  if (q.catching || counted_locked(q, follower, epoch) || std::chrono::steady_clock::now() < q.retry_at) return;
  q.catching = true;
  boost::asio::post(catchers_, [this, shard, qp = &q] { run_catch_up(shard, *qp); });
}

Result<ReplicaPosition> HttpReplicator::settle(unsigned shard) {
  auto epoch = options_.epoch(shard);
  auto follower = options_.follower(shard);
  Queue* q = nullptr;
  {
    std::lock_guard lock(mutex_);
    q = &queue(shard);
  }
  std::lock_guard in_order(q->send);
  std::vector<ReplicaOp> ops;
  {
    std::lock_guard lock(mutex_);
    if (!epoch) return Error{Code::conflict, "this node does not own shard " + std::to_string(shard) + " now"};
    if (!counted_locked(*q, follower, epoch) || q->catching || follower->address.empty()) {
      return Error{Code::unavailable, "the follower of shard " + std::to_string(shard) + " is not in sync"};
    }
    // A batch is sent even when nothing is queued: the follower says where it stands (one that
    // lost its place, by a restart or a copy put back, answers 503 and is seeded again here).
    ops = take_locked(*q);
  }
  std::set<std::string> paths;
  for (const auto& op : ops) paths.insert(op.path);
  Sent sent;
  try {
    sent = transmit(shard, *q, std::move(ops), {paths.begin(), paths.end()}, follower->address, *epoch,
                    std::chrono::steady_clock::now() + options_.timeout, true);
  } catch (const std::exception& e) {
    sent.error = std::string("cannot send the batch: ") + e.what();
  }
  {
    std::lock_guard lock(mutex_);
    count(sent);
  }
  if (sent.error) {
    // The follower may miss what was taken: the next batch is a seed. (Those changes were
    // never synced, so no acknowledgement covers them: the in-sync set stays as it is.)
    q->broken = *sent.error;
    return Error{Code::unavailable, *sent.error};
  }
  return ReplicaPosition{*epoch, q->seeds, q->index};
}

bool HttpReplicator::wait(unsigned shard, std::uint64_t ticket, std::string& error) {
  std::unique_lock lock(mutex_);
  auto& q = queue(shard);
  q.done.wait(lock, [&] { return q.results.count(ticket) != 0; });
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

void HttpReplicator::count(const Sent& sent) {
  // mutex_ held
  if (sent.applied) {
    ++stats_.batches;
    stats_.bytes += sent.bytes;
    stats_.seeds += sent.seed ? 1 : 0;
    stats_.seed_pieces += sent.seed ? sent.pieces : 0;
  } else if (sent.stale) {
    ++stats_.refused_stale;
  } else if (sent.error) {
    ++stats_.failed;
  }
}

void HttpReplicator::send(unsigned shard, Queue& q, std::uint64_t ticket, std::string path,
                          std::chrono::steady_clock::time_point deadline) {
  std::lock_guard in_order(q.send);
  std::optional<std::string> result;
  Sent sent;
  bool alone = false;
  try {
    auto epoch = options_.epoch(shard);
    auto follower = options_.follower(shard);  // as the record is now (a catch-up may have ended)
    std::vector<ReplicaOp> ops;
    bool holding = false, counted = false;
    {
      std::lock_guard lock(mutex_);
      ops = take_locked(q);
      holding = q.hold;
      counted = counted_locked(q, follower, epoch);
    }
    if (!epoch) {
      // The changes taken are dropped with this batch: the next one must be a seed.
      q.broken = "this node does not own the shard now";
      result = "this node does not own shard " + std::to_string(shard) + " now";
    } else if (!counted && !holding) {
      // Not counted (the record changed since the flush): as flush() answers such a sync.
      q.broken = "the follower is not in sync";
      if (options_.min_replicas >= 2) {
        result = too_few(shard);
      } else {
        alone = true;
      }
    } else {
      // A seed due here must fit the sync's deadline: a large one fails the batch (the follower
      // is dropped) and is left to the catch-up, whose seeds take as long as they need, so that
      // no sender thread is held by one shard for long.
      sent = transmit(shard, q, std::move(ops), {path}, follower->address, *epoch, deadline, false);
      if (sent.error) {
        q.broken = *sent.error;
        spdlog::error("replication: shard {}: {}", shard, *sent.error);
        {
          std::lock_guard lock(mutex_);
          q.hold = false;
          q.retry_at = std::chrono::steady_clock::now() + backoff(q, follower->node);
        }
        if (counted) {
          // Counted in sync, and it may now miss this batch: it is dropped from the record
          // before this sync can succeed on the owner's disk alone.
          auto dropped = options_.record(shard, follower->node, false);
          if (dropped.ok() && dropped.value()) {
            spdlog::warn("replication: shard {}: follower {} dropped from the in-sync set", shard, follower->node);
            std::lock_guard lock(mutex_);
            if (q.counted == follower->node) q.counted.clear();
            ++stats_.dropped;
            if (options_.min_replicas < 2) alone = true;
          }
          if (!alone) {
            result = dropped.ok() ? (dropped.value() ? too_few(shard) : *sent.error)
                                  : *sent.error + "; and the in-sync set could not be changed: " +
                                        dropped.error().message;
          }
        } else if (holding) {
          if (options_.min_replicas >= 2) {
            result = too_few(shard);
          } else {
            alone = true;
          }
        }
      }
    }
  } catch (const std::exception& e) {
    // A job that throws would end the process (Asio's thread pool): the sync fails instead.
    q.broken = std::string("cannot send the batch: ") + e.what();
    result = q.broken;
  }
  std::lock_guard lock(mutex_);
  count(sent);
  if (alone) ++stats_.alone;
  q.results[ticket] = std::move(result);
  q.done.notify_all();
}

void HttpReplicator::run_catch_up(unsigned shard, Queue& q) {
  std::lock_guard in_order(q.send);
  std::string node;  // the follower it is for
  auto finish = [&](const std::optional<std::string>& error) {
    if (error) q.broken = *error;  // q.send held
    std::lock_guard lock(mutex_);
    q.catching = false;
    q.hold = false;
    if (error) {
      q.retry_at = std::chrono::steady_clock::now() + backoff(q, node);
    } else {
      q.failures = 0;
    }
  };
  try {
    auto epoch = options_.epoch(shard);
    auto follower = options_.follower(shard);
    if (!epoch || !follower || follower->address.empty()) return finish(std::nullopt);
    node = follower->node;
    {
      std::lock_guard lock(mutex_);
      if (counted_locked(q, follower, epoch)) {
        q.catching = false;
        return;
      }
    }
    auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    {
      std::lock_guard lock(mutex_);
      (void)take_locked(q);  // the seed replaces them
    }
    q.broken = "catching up";  // the next batch is a seed
    auto seeded = transmit(shard, q, {}, {}, follower->address, *epoch, deadline, true);
    {
      std::lock_guard lock(mutex_);
      count(seeded);
    }
    if (seeded.error) {
      spdlog::warn("replication: shard {}: cannot seed follower {}: {}", shard, follower->node, *seeded.error);
      return finish(seeded.error);
    }
    // What syncs acknowledged meanwhile on the owner's disk alone follows the seed; from here
    // on, syncs wait for their batch.
    std::vector<ReplicaOp> ops;
    {
      std::lock_guard lock(mutex_);
      ops = take_locked(q);
      q.hold = true;
    }
    std::set<std::string> paths;
    for (const auto& op : ops) {
      paths.insert(op.path);  // a removal's sync syncs its directory
    }
    auto sent = transmit(shard, q, std::move(ops), {paths.begin(), paths.end()}, follower->address, *epoch,
                         std::chrono::steady_clock::now() + options_.timeout, true);
    {
      std::lock_guard lock(mutex_);
      count(sent);
    }
    if (sent.error) {
      spdlog::warn("replication: shard {}: cannot catch follower {} up: {}", shard, follower->node, *sent.error);
      return finish(sent.error);
    }
    {
      // From here on etcd may count it (an answer lost in a timeout included).
      std::lock_guard lock(mutex_);
      q.counted = follower->node;
      q.counted_epoch = *epoch;
    }
    auto counted = options_.record(shard, follower->node, true);
    if (counted.ok() && !counted.value()) {
      std::lock_guard lock(mutex_);
      if (q.counted == follower->node) q.counted.clear();  // known not to be
    }
    if (!counted.ok() || !counted.value()) {
      return finish("the in-sync set could not count the follower: " +
                    (counted.ok() ? std::string("the record changed") : counted.error().message));
    }
    {
      std::lock_guard lock(mutex_);
      ++stats_.caught_up;
    }
    spdlog::info("replication: shard {}: follower {} is in sync", shard, follower->node);
    finish(std::nullopt);
  } catch (const std::exception& e) {
    finish(std::string("cannot catch the follower up: ") + e.what());
  }
}

HttpReplicator::Sent HttpReplicator::transmit(unsigned shard, Queue& q, std::vector<ReplicaOp> ops,
                                              const std::vector<std::string>& syncs, const std::string& address,
                                              std::int64_t epoch, std::chrono::steady_clock::time_point deadline,
                                              bool patient) {
  Sent out;
  // Each batch after the first of a seed (or of what follows it) has a timeout of its own when
  // `patient`; otherwise all of them are due by `deadline`.
  auto due = [&] {
    return patient ? std::max(deadline, std::chrono::steady_clock::now() + options_.timeout) : deadline;
  };
  auto too_large = [&](std::size_t bytes) {
    return "a batch of " + std::to_string(bytes) + " bytes is over the " + std::to_string(max_replication_batch_bytes) +
           " a follower takes";
  };
  ReplicaBatch batch{shard, epoch, {}};
  for (int attempt = 0;; ++attempt) {
    out.bytes = 0;
    out.pieces = 1;
    bool dropped = false;
    {
      std::lock_guard lock(mutex_);
      dropped = std::exchange(q.dropped, false);  // what a seed read now covers
    }
    out.seed = dropped || !q.broken.empty() || q.seeded != epoch || q.seeded_to != address;
    if (out.seed) {
      // Read after the queue was taken: every change taken is in the files (each is queued once
      // its write returned), so the seed replaces them; later ones follow it. In pieces: all
      // but the last are sent here, each with a timeout of its own; the last goes below.
      char name[16];
      std::snprintf(name, sizeof name, "%04u", shard);
      SeedReader reader(options_.data_dir / "_shards" / name, options_.seed_piece_bytes);
      batch.seed = ++q.seeds;
      batch.index = q.index = 0;
      batch.ops = reader.next();
      while (!reader.done()) {
        auto piece = encode(batch);
        out.bytes += piece.size();
        if (piece.size() > max_replication_batch_bytes) {
          out.error = too_large(piece.size());
          return out;
        }
        auto answer = post(address, std::move(piece), due());
        if (!answer || answer->result_int() != 200) {
          out.error = "the follower " + address + " did not take piece " + std::to_string(batch.index + 1) +
                      " of a seed: " + (answer ? std::to_string(answer->result_int()) + " " + answer->body()
                                               : answer.error().message);
          out.stale = answer && answer->result_int() == 409;
          return out;
        }
        batch.ops = reader.next();
        batch.index = ++q.index;
        ++out.pieces;
      }
    } else {
      batch.ops = std::move(ops);
      batch.seed = q.seeds;
      batch.index = ++q.index;
    }
    for (const auto& path : syncs) batch.ops.push_back({ReplicaOp::Kind::sync, path, 0, {}});
    auto body = encode(batch);
    batch.ops.clear();
    out.bytes += body.size();
    if (body.size() > max_replication_batch_bytes) {
      // (A seed comes in pieces; a batch of changes this large is one sync's worth of a
      // checkpoint far past SQLite's.)
      out.error = too_large(body.size());
      return out;
    }
    auto answer = post(address, std::move(body), out.seed ? due() : deadline);
    if (!answer) {
      out.error = "the follower " + address + " did not answer in time: " + answer.error().message;
      return out;
    }
    if (answer->result_int() == 200) {
      q.broken.clear();
      if (out.seed) {
        q.seeded = epoch;
        q.seeded_to = address;
        // The seed read the files while they were being written (a checkpoint may have moved
        // frames from the WAL read after it into the database file read before it): what was
        // written since its read follows at once, and only then is the sync answered.
        std::vector<ReplicaOp> since;
        {
          std::lock_guard lock(mutex_);
          since = take_locked(q);
        }
        // In batches of at most a seed piece's size (a long seed leaves much behind it), each
        // file it changed synced after the last.
        std::set<std::string> paths;
        for (const auto& op : since) paths.insert(op.path);
        for (std::size_t at = 0; at < since.size();) {
          ReplicaBatch next{shard, epoch, {}, q.seeds, ++q.index};
          std::size_t bytes = 0;
          for (; at < since.size() && (next.ops.empty() || bytes + since[at].bytes.size() <= options_.seed_piece_bytes);
               ++at) {
            bytes += since[at].bytes.size() + since[at].path.size() + 32;
            next.ops.push_back(std::move(since[at]));
          }
          if (at == since.size()) {
            for (const auto& path : paths) next.ops.push_back({ReplicaOp::Kind::sync, path, 0, {}});
          }
          auto encoded = encode(next);
          if (encoded.size() > max_replication_batch_bytes) {
            out.error = too_large(encoded.size());
            return out;
          }
          auto follow = post(address, std::move(encoded), due());
          if (!follow || follow->result_int() != 200) {
            out.error = "the follower " + address + " did not take what followed the seed: " +
                        (follow ? std::to_string(follow->result_int()) + " " + follow->body() : follow.error().message);
            return out;
          }
        }
      }
      out.applied = true;
      return out;
    }
    out.stale = answer->result_int() == 409;
    std::string refused = "the follower " + address + " refused the batch (" + std::to_string(answer->result_int()) +
                          "): " + answer->body();
    // A follower that lost its place (it restarted, or a batch failed there) takes a seed: once,
    // within the same deadline. An older epoch (409) or a malformed batch is final.
    if (out.stale || out.seed || attempt > 0 || answer->result_int() != 503 ||
        std::chrono::steady_clock::now() >= deadline) {
      out.error = refused;
      return out;
    }
    q.broken = refused;
  }
}

Result<HttpReplicator::Answer> HttpReplicator::post(const std::string& address, std::string body,
                                                    std::chrono::steady_clock::time_point deadline) {
  bool reused = false;
  auto peer = take_peer(address, reused);
  auto answer = peer->send(boost::beast::http::verb::post, std::string(replicate_path), body, options_.token, deadline);
  if (!answer && reused && std::chrono::steady_clock::now() < deadline) {
    // A kept-alive connection the follower closed (it restarted, or timed it out): once more
    // on a new one. A batch applied twice leaves what it leaves once (every operation sets
    // bytes, a size or an absence, in order); a second copy of it is refused as out of order.
    peer = std::make_unique<Peer>(host_of(address), port_of(address));
    answer = peer->send(boost::beast::http::verb::post, std::string(replicate_path), std::move(body), options_.token,
                        deadline);
  }
  if (answer) give_peer(address, std::move(peer));
  return answer;
}

std::vector<ReplicaOp> HttpReplicator::take_locked(Queue& q) {
  q.queued_bytes = 0;
  return std::exchange(q.ops, {});
}

HttpReplicator::Stats HttpReplicator::stats() const {
  std::lock_guard lock(mutex_);
  auto out = stats_;
  auto now = std::chrono::steady_clock::now();
  for (const auto& [shard, q] : queues_) {
    if (q->ops.empty()) continue;
    out.lag_bytes += q->queued_bytes;
    out.lag_seconds = std::max(out.lag_seconds, std::chrono::duration<double>(now - q->oldest).count());
  }
  return out;
}

}  // namespace cairn::gateway
