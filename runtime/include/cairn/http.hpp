// HTTP requests and responses as actors see them: plain values, no networking types.
// The gateway builds a Request from the wire and writes a Response back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/result.hpp"

namespace cairn {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of header `name` (case-insensitive), or nullopt.
std::optional<std::string_view> find_header(const Headers& headers, std::string_view name);

// Percent-decodes one query component ('+' is a space) or, with plus_is_space false, one
// path segment ('+' stays). Fails on a bad escape.
Result<std::string> url_decode(std::string_view s, bool plus_is_space = true);

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as received: "/seats?flightId=1"
  Headers headers;
  std::string body;
  // Set by the gateway on an upgrade request: the socket reserved for it (0 = none).
  std::uint64_t websocket = 0;

  // Set by the gateway, never read from the client's own headers (README "Securing the
  // public listener"); empty for a request made in-process (Stub::fetch).
  // The caller's IP address ("203.0.113.7", "2001:db8::1"): the connection's peer, or, when
  // the peer is a --trusted-proxy, the client it names in Forwarded or X-Forwarded-For.
  std::string client_address = {};
  // This request's id, also in the response's X-Request-Id header and in its error bodies:
  // generated, or a trusted proxy's X-Request-Id.
  std::string request_id = {};
  // W3C trace context, "00-<trace id>-<span id>-<flags>": the caller's trace (a valid
  // traceparent header) or a new one; the span is the gateway's.
  std::string traceparent = {};
  // The claims of the caller's verified bearer token (JWT) where the route requires one
  // (--auth-required); null elsewhere.
  nlohmann::json claims = nullptr;

  std::string_view path() const;
  std::string_view query() const;  // after '?', or empty
  // The decoded value of query parameter `name`: nullopt if absent, an error if malformed.
  Result<std::optional<std::string>> query_param(std::string_view name) const;
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
  bool is_websocket_upgrade() const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  // A response with `value` as its JSON body.
  static Response json(int status, const nlohmann::json& value);
  // The JSON error body {"error": ..., "status": N} with the status of the error's code.
  static Response error(const Error& error);
  static Response error(Code code, std::string message) { return error(Error{code, std::move(message)}); }
  // 405 with the Allow header, e.g. method_not_allowed("GET, HEAD", "use GET /seats").
  static Response method_not_allowed(std::string allow, std::string message);
  // 101: the actor accepted the WebSocket upgrade (made by Context::accept_websocket).
  static Response switching_protocols();
};

namespace detail {
// Marks a 500 the runtime made from what an actor threw (its body names the exception): the
// public gateway answers such a response with a generic message and the request id, and
// logs the text instead (README "Securing the public listener").
inline constexpr std::string_view internal_error_header = "X-Cairn-Internal-Error";
}  // namespace detail

}  // namespace cairn
