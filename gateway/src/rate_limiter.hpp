// RateLimiter: a token bucket per client, for one rate limit, in bounded memory. Sharded (a
// lock per shard) so I/O threads rarely wait on each other; each shard forgets its least
// recently seen client when it is full: a forgotten client starts again with a full burst.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cairn::gateway {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // `rate` tokens per second, at most `burst` kept; `max_clients` remembered at most.
  RateLimiter(double rate, double burst, std::size_t max_clients);

  // Takes a token for `client`: nullopt if it had one, else the seconds until it will.
  std::optional<double> take(std::string_view client, Clock::time_point now);
  std::size_t clients() const;

 private:
  struct Bucket {
    std::string client;
    double tokens;
    Clock::time_point at;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::list<Bucket> recent;  // most recently seen first
    std::unordered_map<std::string_view, std::list<Bucket>::iterator> by_client;  // keys view `recent`
  };
  static constexpr std::size_t shard_count = 16;
  double rate_;
  double burst_;
  std::size_t per_shard_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace cairn::gateway
