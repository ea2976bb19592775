// Edge: EdgeOptions made ready to use by the public listener's sessions (any I/O thread).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>
#include <nlohmann/json.hpp>

#include "cairn/gateway/edge.hpp"
#include "jwt.hpp"
#include "rate_limiter.hpp"

namespace cairn::gateway {

// A set of networks (CIDRs).
class Networks {
 public:
  // invalid_argument naming the bad entry.
  static Result<Networks> parse(const std::vector<std::string>& cidrs);
  bool contains(const boost::asio::ip::address& address) const;
  bool empty() const { return networks_.empty(); }

 private:
  struct Network {
    std::array<unsigned char, 16> bytes{};  // IPv4 as IPv4-mapped IPv6
    unsigned prefix = 0;                    // of the 128 bits
  };
  std::vector<Network> networks_;
};

// The address as the logs and Request::client_address show it: IPv4 (also when mapped into
// IPv6) in dotted form, IPv6 in its short form.
std::string address_text(const boost::asio::ip::address& address);

// The client's address: `peer`, or, when `peer` is in `trusted`, the nearest address that
// the proxies name in `header` (X-Forwarded-For, or Forwarded's for=) and that is not itself a
// trusted proxy. Only that one header is read: a proxy that appends to one passes a client's
// other one through untouched.
std::string client_address(const boost::asio::ip::address& peer, const boost::beast::http::fields& headers,
                           const Networks& trusted, std::string_view header = "X-Forwarded-For");

// Who a rate limit counts an address as: an IPv4 address itself; an IPv6 address by its /64
// (one host gets a whole /64 and could take a fresh address per request).
std::string rate_limit_key(const std::string& address);

// A new request id: 16 hex digits, random.
std::string new_request_id();
// A request id a trusted proxy sent, if it is 1 to 128 of [A-Za-z0-9._:-] (nothing that
// could forge a log line); else nullopt.
std::optional<std::string> usable_request_id(std::string_view value);
// The traceparent the actor gets: the caller's trace (if `incoming` is a valid version-00
// traceparent) with a new span id, else a new trace (sampled flag off).
std::string next_traceparent(std::string_view incoming);

class Edge {
 public:
  // Throws std::invalid_argument for options check_edge_options refuses.
  explicit Edge(EdgeOptions options);

  const EdgeOptions& options() const { return options_; }
  const Networks& trusted() const { return trusted_; }

  // --- CORS.
  bool cors() const { return !options_.cors_origins.empty(); }
  // Whether a browser page of `origin` may call (listed, or "*"); same-origin is the
  // caller's to check (same_origin()).
  bool origin_allowed(std::string_view origin) const;
  // The headers an actual response to a request from allowed `origin` carries.
  void add_cors_headers(Headers& headers, std::string_view origin) const;
  // The answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method).
  Response preflight(std::string_view origin, std::string_view requested_headers) const;

  // --- Tokens: the claims of a valid bearer token in `authorization`, or the 401.
  bool token_required(std::string_view method, std::string_view path, std::string_view binding) const;
  Result<nlohmann::json> verify_bearer(std::optional<std::string_view> authorization) const;

  // --- Rate limits: nullopt if every rule the request matches has a token for `client`
  // (each then takes one), else the seconds until the first refusing rule has one.
  std::optional<double> over_limit(std::string_view method, std::string_view path, std::string_view binding,
                                   std::string_view client);
  // Clients remembered by every rule together (the metric).
  std::size_t rate_limited_clients() const;

 private:
  EdgeOptions options_;
  Networks trusted_;
  std::unique_ptr<JwtVerifier> jwt_;
  std::vector<std::unique_ptr<RateLimiter>> limiters_;  // one per options_.rate_limits
};

// Whether `origin` (scheme://host[:port]) names the host the request was sent to (`host`,
// the Host header): the listener's own pages.
bool same_origin(std::string_view origin, std::string_view host);

}  // namespace cairn::gateway
