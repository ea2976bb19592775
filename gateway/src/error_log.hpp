// ErrorLog: the last requests the public listener answered 5xx, kept for the admin API (GET
// /admin/errors): what a client with a request id in its error body can be looked up by,
// with the text it was not shown. Bounded (the newest `capacity`).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "cairn/gateway/gateway.hpp"

namespace cairn::gateway {

class ErrorLog {
 public:
  struct Entry {
    std::chrono::system_clock::time_point at;
    std::string request_id;
    std::string trace_id;
    std::string method;
    std::string path;  // without the query
    int status = 0;
    std::string detail;  // the error body the server produced (before it was made generic)
  };
  explicit ErrorLog(std::size_t capacity = 200) : capacity_(capacity) {}

  void add(Entry entry) {
    std::lock_guard lock(mutex_);
    entries_.push_front(std::move(entry));
    if (entries_.size() > capacity_) entries_.pop_back();
  }
  // Newest first; only `request_id`'s if it is not empty.
  nlohmann::json to_json(const std::string& request_id) const {
    auto out = nlohmann::json::array();
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_) {
      if (!request_id.empty() && e.request_id != request_id) continue;
      out.push_back({{"time_ms", std::chrono::duration_cast<std::chrono::milliseconds>(e.at.time_since_epoch()).count()},
                     {"request_id", e.request_id},
                     {"trace_id", e.trace_id},
                     {"method", e.method},
                     {"path", e.path},
                     {"status", e.status},
                     {"detail", e.detail}});
    }
    return out;
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
};

}  // namespace cairn::gateway
