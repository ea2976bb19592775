// ActorId: the identity of one actor instance, derived from (binding, name).
// Used by the runtime's directory, file paths (hex form only) and actors (name()).
#pragma once

#include <string>
#include <string_view>

#include "cairn/result.hpp"

namespace cairn {

class ActorId {
 public:
  // The id of `name` under `binding`: SHA-256 of binding, a NUL, and name, printed as 64
  // lower-case hex digits. Fails with invalid_argument for an empty or over-long binding or
  // name (limits::max_binding_name_bytes, limits::max_actor_name_bytes).
  static Result<ActorId> make(std::string_view binding, std::string_view name);

  const std::string& binding() const noexcept { return binding_; }
  // The name the id was made from (Durable Objects' ctx.id.name). Never used in a path.
  const std::string& name() const noexcept { return name_; }
  // 64 hex digits; safe in a file name.
  const std::string& hex() const noexcept { return hex_; }

  // The id's shard: its top 10 bits (0 to shard_count - 1). A shard's actors live together
  // (one directory), and in cluster mode one node owns each shard. HAProxy computes the same
  // number from the name (see README, "Running a cluster").
  static constexpr unsigned shard_count = 1024;
  unsigned shard() const noexcept {
    auto digit = [](char c) { return static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10); };
    return ((digit(hex_[0]) << 8) | (digit(hex_[1]) << 4) | digit(hex_[2])) >> 2;
  }

  friend bool operator==(const ActorId& a, const ActorId& b) noexcept {
    return a.binding_ == b.binding_ && a.hex_ == b.hex_;
  }

 private:
  ActorId(std::string binding, std::string name, std::string hex)
      : binding_(std::move(binding)), name_(std::move(name)), hex_(std::move(hex)) {}
  std::string binding_;
  std::string name_;
  std::string hex_;
};

}  // namespace cairn
