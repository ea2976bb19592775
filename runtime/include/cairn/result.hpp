// Expected outcomes as values: cairn::Result<T> carries either a T or a cairn::Error.
// Used by every layer; an Error's code maps to one HTTP status (http_status()).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

namespace cairn {

enum class Code {
  invalid_argument,    // 400
  unauthenticated,     // 401: no valid credentials (the admin API's bearer token)
  forbidden,           // 403: the caller lacks the token or right the operation needs
  not_found,           // 404
  method_not_allowed,  // 405
  conflict,            // 409
  too_large,           // 413
  headers_too_large,   // 431: the request line or headers are over the gateway's limit
  resource_exhausted,  // 429
  internal,            // 500
  unavailable,         // 503: storage or the runtime failed for now; retryable
  overloaded,          // 503 with Retry-After: the actor's queue is full; retryable at once
  timeout,             // 504: no answer within the request timeout; the outcome is unknown
  storage_full,        // 507: the disk is full; retryable once space is freed
};

// The HTTP status that answers an error of this code.
int http_status(Code code) noexcept;
// A stable lower-case name ("invalid_argument"), for logs and tests.
const char* code_name(Code code) noexcept;
// True for the failures a client may try again later (unavailable, overloaded, timeout,
// storage_full). Whether the failed write happened is unknown for timeout and for a failed
// fsync (unavailable); it never happened for overloaded or a refused write.
bool retryable(Code code) noexcept;
// Seconds a client should wait before retrying an overloaded or unavailable actor
// (the Retry-After header of those answers).
inline constexpr int retry_after_seconds = 1;

struct Error {
  Code code = Code::internal;
  std::string message;

  // The JSON body every error answers with: {"error": message, "status": http_status(code)},
  // plus "retryable": true for a retryable code and "overloaded": true for overloaded.
  nlohmann::json to_json() const;
};

// A tag that lets `return fail(Code::conflict, "...")` convert into any Result<T>.
inline Error fail(Code code, std::string message) { return Error{code, std::move(message)}; }

// The std::expected vocabulary, which C++20's libstdc++ lacks. Accessing the wrong
// alternative is a bug and asserts.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace cairn
