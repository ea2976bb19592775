// Activity: the event rings and the top lists (activity.hpp).
#include "activity.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "cairn/limits.hpp"

namespace cairn::detail {

std::size_t LatencyHistogram::bucket_of(std::uint64_t micros) noexcept {
  if (micros == 0) return 0;
  auto floor_log2 = static_cast<std::size_t>(std::bit_width(micros) - 1);
  std::size_t bucket = 2 * floor_log2;
  if (static_cast<double>(micros) >= std::ldexp(std::sqrt(2.0), static_cast<int>(floor_log2))) ++bucket;
  return std::min(bucket, buckets - 1);
}

double LatencyHistogram::upper_bound_us(std::size_t bucket) noexcept {
  return std::exp2(static_cast<double>(bucket + 1) / 2.0);
}

void LatencyHistogram::add(std::uint64_t micros, std::uint32_t count) noexcept {
  counts_[bucket_of(micros)] += count;
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t i = 0; i < buckets; ++i) counts_[i] += other.counts_[i];
}

std::uint64_t LatencyHistogram::count() const noexcept {
  std::uint64_t n = 0;
  for (auto c : counts_) n += c;
  return n;
}

double LatencyHistogram::quantile_ms(double q) const noexcept {
  auto total = count();
  if (total == 0) return 0;
  // The rank of the q quantile, counted from 1: the ceil(q * total)-th smallest.
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
  rank = std::clamp<std::uint64_t>(rank, 1, total);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return upper_bound_us(i) / 1000.0;
  }
  return upper_bound_us(buckets - 1) / 1000.0;
}

std::string_view kind_name(EventRecord::Kind kind) noexcept {
  switch (kind) {
    case EventRecord::Kind::fetch: return "fetch";
    case EventRecord::Kind::call: return "call";
    case EventRecord::Kind::message: return "message";
    case EventRecord::Kind::close: return "close";
    case EventRecord::Kind::error: return "error";
    case EventRecord::Kind::alarm: return "alarm";
  }
  return "unknown";
}

std::string cut_utf8(std::string_view text, std::size_t bytes) {
  if (text.size() <= bytes) return std::string(text);
  std::size_t end = bytes;
  // Back to the first byte of the character the cut would split (continuation bytes are
  // 10xxxxxx).
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

EventRecord& EventRing::push(EventRecord record) {
  if (capacity_ == 0) throw std::logic_error("EventRing::push on a ring of capacity 0");
  if (record.what.size() > limits::event_record_what_bytes || record.what.capacity() > 2 * limits::event_record_what_bytes) {
    record.what = cut_utf8(record.what, limits::event_record_what_bytes);
  }
  std::uint64_t n = total_++;
  if (records_.size() < capacity_) {
    records_.push_back(std::move(record));
    return records_.back();
  }
  auto& slot = records_[n % capacity_];
  slot = std::move(record);
  return slot;
}

nlohmann::json EventRing::json() const {
  auto out = nlohmann::json::array();
  std::uint64_t first = total_ > records_.size() ? total_ - records_.size() : 0;
  for (std::uint64_t n = total_; n > first; --n) {
    const auto& r = records_[(n - 1) % capacity_];
    out.push_back({{"at_ms", r.at_ms},
                   {"kind", kind_name(r.kind)},
                   {"what", r.what},
                   {"status", r.status},
                   {"duration_ms", static_cast<double>(r.duration_us) / 1000.0},
                   {"batch", r.open ? nlohmann::json() : nlohmann::json(r.batch)}});
  }
  return out;
}

std::int64_t ActivityTable::slot_index(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() /
         std::chrono::duration_cast<std::chrono::milliseconds>(limits::activity_slot).count();
}

void ActivityTable::add(const ActorId& id, const BatchActivity& batch, clock::time_point now) {
  if (!enabled() || batch.empty()) return;
  auto index = slot_index(now);
  std::lock_guard lock(mutex_);
  if (slots_.empty()) slots_.resize(limits::activity_slots);
  auto& slot = slots_[static_cast<std::size_t>(index) % slots_.size()];
  if (slot.index != index) {
    slot.actors.clear();
    slot.index = index;
  }
  auto [it, inserted] = slot.actors.try_emplace(id.hex());
  auto& stats = it->second;
  if (inserted) {
    stats.binding = id.binding();
    stats.name = id.name();
  }
  stats.events += batch.events;
  stats.errors += batch.errors;
  stats.latency.merge(batch.latency);
  if (inserted && slot.actors.size() > limits::activity_actors_per_slot) prune(slot);
}

void ActivityTable::prune(Slot& slot) {
  // Keeps the half that matters most to an operator: errors first, then events.
  std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::string>> ranked;
  ranked.reserve(slot.actors.size());
  for (const auto& [hex, stats] : slot.actors) ranked.push_back({{stats.errors, stats.events}, hex});
  auto keep = limits::activity_actors_per_slot / 2;
  std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(keep), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto i = keep; i < ranked.size(); ++i) slot.actors.erase(ranked[i].second);
}

nlohmann::json ActivityTable::top(std::chrono::seconds window, std::size_t limit, clock::time_point now) const {
  struct Row {
    std::string binding;
    std::string name;
    std::uint64_t events = 0;
    std::uint64_t errors = 0;
    LatencyHistogram latency;
    double p99 = 0;
  };
  auto slot_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limits::activity_slot).count();
  auto window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(window).count();
  auto slots = std::clamp<std::int64_t>((window_ms + slot_ms - 1) / slot_ms, 1,
                                        static_cast<std::int64_t>(limits::activity_slots));
  auto newest = slot_index(now);
  // Only the merge holds the lock (every host's batch end waits on it); ranking is outside.
  std::unordered_map<std::string, Row> merged;
  {
    std::lock_guard lock(mutex_);
    for (const auto& slot : slots_) {
      if (slot.index < 0 || slot.index > newest || slot.index <= newest - slots) continue;
      for (const auto& [hex, stats] : slot.actors) {
        auto [it, inserted] = merged.try_emplace(hex);
        auto& row = it->second;
        if (inserted) {
          row.binding = stats.binding;
          row.name = stats.name;
        }
        row.events += stats.events;
        row.errors += stats.errors;
        row.latency.merge(stats.latency);
      }
    }
  }
  std::vector<Row*> rows;
  rows.reserve(merged.size());
  for (auto& [hex, row] : merged) {
    row.p99 = row.latency.quantile_ms(0.99);
    rows.push_back(&row);
  }
  auto list = [&](auto better, bool errors_only) {
    std::vector<Row*> chosen;
    for (auto* row : rows) {
      if (!errors_only || row->errors > 0) chosen.push_back(row);
    }
    auto n = std::min(limit, chosen.size());
    std::partial_sort(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(n), chosen.end(), better);
    auto out = nlohmann::json::array();
    for (std::size_t i = 0; i < n; ++i) {
      const auto* row = chosen[i];
      out.push_back({{"binding", row->binding},
                     {"name", row->name},
                     {"events", row->events},
                     {"errors", row->errors},
                     {"p50_ms", row->latency.quantile_ms(0.5)},
                     {"p99_ms", row->p99}});
    }
    return out;
  };
  // Ties by name, so the lists are stable from one refresh to the next.
  auto by_name = [](const Row* a, const Row* b) { return std::tie(a->binding, a->name) < std::tie(b->binding, b->name); };
  return {{"seconds", slots * slot_ms / 1000},
          {"busiest", list([&](const Row* a, const Row* b) {
             return a->events != b->events ? a->events > b->events : by_name(a, b);
           }, false)},
          {"slowest", list([&](const Row* a, const Row* b) {
             return a->p99 != b->p99 ? a->p99 > b->p99 : (a->events != b->events ? a->events > b->events : by_name(a, b));
           }, false)},
          {"failing", list([&](const Row* a, const Row* b) {
             return a->errors != b->errors ? a->errors > b->errors : by_name(a, b);
           }, true)}};
}

void ActivityTable::forget(const ActorId& id) {
  std::lock_guard lock(mutex_);
  if (auto it = parked_by_id_.find(id.hex()); it != parked_by_id_.end()) {
    parked_.erase(it->second);
    parked_by_id_.erase(it);
  }
}

void ActivityTable::park(const ActorId& id, EventRing ring) {
  if (!enabled() || ring.total() == 0) return;
  std::lock_guard lock(mutex_);
  if (auto it = parked_by_id_.find(id.hex()); it != parked_by_id_.end()) {
    parked_.erase(it->second);
    parked_by_id_.erase(it);
  }
  parked_.emplace_front(id.hex(), std::move(ring));
  parked_by_id_[parked_.front().first] = parked_.begin();
  while (parked_.size() > limits::parked_event_rings) {
    parked_by_id_.erase(parked_.back().first);
    parked_.pop_back();
  }
}

EventRing ActivityTable::unpark(const ActorId& id) {
  if (!enabled()) return EventRing(0);
  std::lock_guard lock(mutex_);
  auto it = parked_by_id_.find(id.hex());
  if (it == parked_by_id_.end()) return EventRing(ring_capacity_);
  EventRing ring = std::move(it->second->second);
  parked_.erase(it->second);
  parked_by_id_.erase(it);
  return ring;
}

}  // namespace cairn::detail
