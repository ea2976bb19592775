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

}  // namespace cairn
