#include "rate_limiter.hpp"

#include <algorithm>
#include <functional>

namespace cairn::gateway {

RateLimiter::RateLimiter(double rate, double burst, std::size_t max_clients)
    : rate_(rate), burst_(std::max(1.0, burst)),
      per_shard_(std::max<std::size_t>(1, (max_clients + shard_count - 1) / shard_count)),
      shards_(std::make_unique<Shard[]>(shard_count)) {}

std::optional<double> RateLimiter::take(std::string_view client, Clock::time_point now) {
  auto& shard = shards_[std::hash<std::string_view>{}(client) % shard_count];
  std::lock_guard lock(shard.mutex);
  auto found = shard.by_client.find(client);
  if (found == shard.by_client.end()) {
    if (shard.by_client.size() >= per_shard_) {  // forget the least recently seen
      shard.by_client.erase(shard.recent.back().client);
      shard.recent.pop_back();
    }
    shard.recent.push_front(Bucket{std::string(client), burst_ - 1, now});
    shard.by_client.emplace(shard.recent.front().client, shard.recent.begin());
    return std::nullopt;
  }
  auto bucket = found->second;
  shard.recent.splice(shard.recent.begin(), shard.recent, bucket);  // iterators stay valid
  double elapsed = std::chrono::duration<double>(now - bucket->at).count();
  if (elapsed > 0) {
    bucket->tokens = std::min(burst_, bucket->tokens + elapsed * rate_);
    bucket->at = now;
  }
  if (bucket->tokens >= 1) {
    bucket->tokens -= 1;
    return std::nullopt;
  }
  return (1 - bucket->tokens) / rate_;
}

std::size_t RateLimiter::clients() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].by_client.size();
  }
  return n;
}

}  // namespace cairn::gateway
