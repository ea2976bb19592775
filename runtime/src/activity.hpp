// Activity: what the runtime remembers of its actors' recent events, for operators (the admin
// API's recent events and top lists, the inspector page, cairnctl top). Two parts:
// - EventRing: one actor's last events (kind, what, status, duration, the size of the commit
//   it joined), kept by its host while it is live and parked in the ActivityTable when the
//   host ends (the most recently parked limits::parked_event_rings of them), so an actor
//   woken again, or inspected while hibernated, still shows them.
// - ActivityTable: per actor, events, errors and a latency histogram in time slots of
//   limits::activity_slot (the last limits::activity_slots of them), from which the busiest,
//   slowest and failing actors of a window are ranked. Bounded: a slot remembers at most
//   limits::activity_actors_per_slot actors; past that it keeps the half with the most errors
//   and events (the ranking is then approximate for the quietest actors).
// RuntimeOptions::recent_events (0) turns both off.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/actor_id.hpp"

namespace cairn::detail {

// Durations in microseconds, in buckets half a power of two wide: bucket i holds
// [2^(i/2), 2^((i+1)/2)) (bucket 0 also holds 0). A quantile is its bucket's upper bound,
// so within a factor of 1.42 above the truth; the last bucket holds everything past ~16 s.
class LatencyHistogram {
 public:
  static constexpr std::size_t buckets = 48;
  void add(std::uint64_t micros, std::uint32_t count = 1) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  std::uint64_t count() const noexcept;
  // The q quantile (0 < q <= 1) in milliseconds (the bucket's upper bound); 0 if empty.
  double quantile_ms(double q) const noexcept;
  static std::size_t bucket_of(std::uint64_t micros) noexcept;
  static double upper_bound_us(std::size_t bucket) noexcept;

 private:
  std::array<std::uint32_t, buckets> counts_{};
};

struct EventRecord {
  enum class Kind : std::uint8_t { fetch, call, message, close, error, alarm };
  std::int64_t at_ms = 0;          // when it started, by the runtime's clock
  std::uint32_t duration_us = 0;   // on the actor's thread (its commit's fsync not included)
  std::uint16_t status = 200;      // a fetch's status; a call's (200 or its error's); else 200 or 500 if it threw;
                                   // 503 if it never ran or its batch was rolled back
  std::uint16_t batch = 0;         // events in the commit it joined; 0: none (yet)
  Kind kind = Kind::fetch;
  std::string what;                // "GET /seats", the method, the alarm's name (at most 64 bytes)
  bool open = false;               // its batch has not ended: its answer waits for the commit
};

// `text` cut to at most `bytes` bytes, not inside a UTF-8 character, in a string of its own
// size (the rest of a long path is not kept in its capacity).
std::string cut_utf8(std::string_view text, std::size_t bytes);

std::string_view kind_name(EventRecord::Kind kind) noexcept;

class EventRing {
 public:
  explicit EventRing(std::size_t capacity = 0) : capacity_(capacity) {}
  std::size_t capacity() const noexcept { return capacity_; }
  // Events recorded over the ring's life; the next one gets this number.
  std::uint64_t total() const noexcept { return total_; }
  EventRecord& push(EventRecord record);
  // The events numbered `from` and later (up to `to`, excluded) that the ring still holds,
  // oldest first.
  template <class F>
  void each_between(std::uint64_t from, std::uint64_t to, F&& f) {
    std::uint64_t first = total_ > records_.size() ? total_ - records_.size() : 0;
    for (std::uint64_t n = std::max(from, first); n < std::min(to, total_); ++n) f(records_[n % capacity_]);
  }
  template <class F>
  void each_since(std::uint64_t from, F&& f) {
    each_between(from, total_, std::forward<F>(f));
  }
  // Newest first: [{"at_ms", "kind", "what", "status", "duration_ms", "batch"}]; batch is
  // null while the event's batch is open, 0 if it committed in none (refused, or failed).
  nlohmann::json json() const;

 private:
  std::size_t capacity_;
  std::uint64_t total_ = 0;
  std::vector<EventRecord> records_;  // grows to capacity_, then wraps
};

// What one actor did in one batch, added to the table when the batch ends.
struct BatchActivity {
  std::uint32_t events = 0;
  std::uint32_t errors = 0;  // status >= 500
  LatencyHistogram latency;
  bool empty() const noexcept { return events == 0 && errors == 0; }
};

class ActivityTable {
 public:
  using clock = std::chrono::steady_clock;
  explicit ActivityTable(std::size_t ring_capacity) : ring_capacity_(ring_capacity) {}
  bool enabled() const noexcept { return ring_capacity_ > 0; }
  std::size_t ring_capacity() const noexcept { return ring_capacity_; }

  void add(const ActorId& id, const BatchActivity& batch, clock::time_point now = clock::now());
  // Forgets a deleted actor's parked ring (its counts age out with their slots).
  void forget(const ActorId& id);
  // {"seconds", "busiest", "slowest", "failing"}: each at most `limit` actors
  // {"binding", "name", "events", "errors", "p50_ms", "p99_ms"} of the last `window`
  // (rounded up to whole slots), by events, by p99, by errors (only those with errors).
  nlohmann::json top(std::chrono::seconds window, std::size_t limit, clock::time_point now = clock::now()) const;

  // A host's ring when it ends, and back when the actor's next host starts (a fresh one if
  // none is parked).
  void park(const ActorId& id, EventRing ring);
  EventRing unpark(const ActorId& id);

 private:
  struct Stats {
    std::string binding;
    std::string name;
    std::uint64_t events = 0;
    std::uint64_t errors = 0;
    LatencyHistogram latency;
  };
  struct Slot {
    std::int64_t index = -1;  // time since the clock's epoch in activity_slot units
    std::unordered_map<std::string, Stats> actors;  // by hex id
  };
  static std::int64_t slot_index(clock::time_point t);
  void prune(Slot& slot);

  std::size_t ring_capacity_;
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;  // activity_slots of them, by index modulo their count
  std::list<std::pair<std::string, EventRing>> parked_;  // most recent first
  std::unordered_map<std::string, std::list<std::pair<std::string, EventRing>>::iterator> parked_by_id_;
};

}  // namespace cairn::detail
