// What a log line is about: the request (its id) and the trace it belongs to. The gateway sets
// it while it handles a request, the runtime while an actor runs an event of one; cairn's log
// formats add it to every line written meanwhile on that thread (text: " request_id=...
// trace_id=..."; --log-format json: as fields), the actor's own spdlog lines included.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cairn {

struct LogContext {
  std::string request_id;
  std::string trace_id;  // 32 hex digits, or empty
  // More fields of the line being written: --log-format json calls add_fields(fields_of,
  // line) to add them to its object; a text line carries them in its message already (the
  // access log). Made only when a JSON line is written.
  void (*add_fields)(const void* fields_of, nlohmann::json& line) = nullptr;
  const void* fields_of = nullptr;
  bool empty() const noexcept { return request_id.empty() && trace_id.empty() && add_fields == nullptr; }
};

// The request an event descends from: the HTTP request that started it, or the event whose
// Context::call or alarm led to it. Carried with calls (across nodes too) and alarms.
struct TraceContext {
  std::string request_id;
  std::string traceparent;  // W3C "00-<trace id>-<span id>-<flags>", or empty
  bool empty() const noexcept { return request_id.empty() && traceparent.empty(); }
};

// The context of what this thread does now, or nullptr.
const LogContext* current_log_context() noexcept;

// Sets the thread's context for its lifetime (the one before comes back after). An empty
// context sets nothing.
class ScopedLogContext {
 public:
  explicit ScopedLogContext(LogContext context) noexcept;
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  LogContext context_;
  const LogContext* previous_;
  bool set_;
};

// The trace id (32 hex digits) of a traceparent "00-<trace id>-<span id>-<flags>", or "".
std::string_view trace_id_of(std::string_view traceparent) noexcept;

}  // namespace cairn
