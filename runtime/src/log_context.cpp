#include "cairn/log_context.hpp"

#include <utility>

namespace cairn {
namespace {
thread_local const LogContext* current = nullptr;
}  // namespace

const LogContext* current_log_context() noexcept { return current; }

ScopedLogContext::ScopedLogContext(LogContext context) noexcept
    : context_(std::move(context)), previous_(current), set_(!context_.empty()) {
  if (set_) current = &context_;
}

ScopedLogContext::~ScopedLogContext() {
  if (set_) current = previous_;
}

std::string_view trace_id_of(std::string_view traceparent) noexcept {
  // version "00" '-' 32 hex '-' 16 hex '-' 2 hex: the gateway only hands on valid ones.
  if (traceparent.size() < 55 || traceparent[2] != '-') return {};
  return traceparent.substr(3, 32);
}

}  // namespace cairn
