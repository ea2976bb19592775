// Error codes and their HTTP statuses.
#include "cairn/result.hpp"

namespace cairn {

int http_status(Code code) noexcept {
  switch (code) {
    case Code::invalid_argument: return 400;
    case Code::unauthenticated: return 401;
    case Code::forbidden: return 403;
    case Code::not_found: return 404;
    case Code::method_not_allowed: return 405;
    case Code::conflict: return 409;
    case Code::too_large: return 413;
    case Code::headers_too_large: return 431;
    case Code::resource_exhausted: return 429;
    case Code::internal: return 500;
    case Code::unavailable: return 503;
    case Code::overloaded: return 503;
    case Code::timeout: return 504;
    case Code::storage_full: return 507;
  }
  return 500;
}

const char* code_name(Code code) noexcept {
  switch (code) {
    case Code::invalid_argument: return "invalid_argument";
    case Code::unauthenticated: return "unauthenticated";
    case Code::forbidden: return "forbidden";
    case Code::not_found: return "not_found";
    case Code::method_not_allowed: return "method_not_allowed";
    case Code::conflict: return "conflict";
    case Code::too_large: return "too_large";
    case Code::headers_too_large: return "headers_too_large";
    case Code::resource_exhausted: return "resource_exhausted";
    case Code::internal: return "internal";
    case Code::unavailable: return "unavailable";
    case Code::overloaded: return "overloaded";
    case Code::timeout: return "timeout";
    case Code::storage_full: return "storage_full";
  }
  return "internal";
}

bool retryable(Code code) noexcept {
  return code == Code::unavailable || code == Code::overloaded || code == Code::timeout ||
         code == Code::storage_full;
}

nlohmann::json Error::to_json() const {
  // "code": the Code's stable name, for programs (the message is for people and may change).
  nlohmann::json out{{"error", message}, {"status", http_status(code)}, {"code", code_name(code)}};
  if (retryable(code)) out["retryable"] = true;
  if (code == Code::overloaded) out["overloaded"] = true;
  return out;
}

}  // namespace cairn
