// The public edge: what the gateway checks and adds before a request reaches an actor (README
// "Securing the public listener"). Who is calling (the client's address, behind trusted
// proxies only), request ids and W3C traces, CORS, bearer tokens (JWT, HS256 or RS256), rate
// limits per client, and a hook of the application's own. The public listener only: the admin
// listener has its own token, the internal one the cluster's.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/http.hpp"
#include "cairn/result.hpp"

namespace cairn::gateway {

// Which requests a rule covers, written "[METHODS] TARGET":
// - METHODS: one method or several joined by ',' ("POST", "GET,HEAD"); absent or "*": all.
// - TARGET: a path ("/book": that path exactly; "/objects/COUNTER/*": every path under
//   "/objects/COUNTER/"), a binding name ("FLIGHT": every route to it, the generic
//   /objects/FLIGHT/ route included), or "*": every request.
// E.g. "POST /book", "FLIGHT", "GET,HEAD /seats", "*".
struct RequestRule {
  std::string text;  // as written, for messages and metrics
  std::vector<std::string> methods;  // empty: all
  std::string path;     // a path, or a prefix when `prefix`; empty: not by path
  bool prefix = false;
  std::string binding;  // empty: not by binding
  bool everything = false;
  bool matches(std::string_view method, std::string_view path, std::string_view binding) const;
};
// invalid_argument naming what is wrong.
Result<RequestRule> parse_request_rule(std::string_view text);

// Bearer tokens: JSON Web Tokens signed with HS256 (a shared secret) or RS256 (an RSA key
// pair; the gateway holds the public key). A token is valid when its signature is, its
// "alg" is the configured one (never "none"), "exp" (required) and "nbf" hold within the
// clock skew, and "iss" and "aud" (a string or a list) are the configured ones when set.
struct JwtOptions {
  std::string hs256_secret = {};        // the key's bytes (at least 32)
  std::string rs256_public_key_pem = {};  // a PEM public key (or certificate)
  std::string issuer = {};    // empty: not checked
  std::string audience = {};  // empty: not checked
  std::chrono::seconds clock_skew{30};
  // Where a valid token is required: 401 without one (WWW-Authenticate: Bearer), with the
  // claims in Request::claims for the actor. Elsewhere the Authorization header goes to the
  // actor unread.
  std::vector<RequestRule> required = {};
  bool enabled() const { return !hs256_secret.empty() || !rs256_public_key_pem.empty(); }
};

// A token bucket per client: `rate` requests per second on average, `burst` at once. A client
// is its verified identity (the token's "sub") where there is one, else its address. Each
// rule has its own buckets; a request counts against every rule it matches.
struct RateLimit {
  RequestRule rule;
  double rate = 0;  // requests per second, > 0
  double burst = 1;  // >= 1
};
// "[METHODS] TARGET RATE/UNIT [BURST]": "POST /book 5/s 10", "* 100/min", "FLIGHT 20/s".
// UNIT is s, min or h; BURST defaults to the rate per second rounded up (at least 1).
Result<RateLimit> parse_rate_limit(std::string_view text);

struct EdgeOptions {
  // Networks (CIDRs, "10.0.0.0/8", "::1/128", or single addresses) whose connections are
  // proxies: their Forwarded / X-Forwarded-For headers name the client, their X-Request-Id is
  // kept. From anyone else those headers are ignored.
  std::vector<std::string> trusted_proxies = {};
  // The header those proxies write: "X-Forwarded-For" (nginx, HAProxy, cloud load balancers)
  // or "Forwarded" (RFC 7239). Only that one is read: a proxy passes the other through as the
  // client wrote it.
  std::string forwarded_header = "X-Forwarded-For";
  // Origins (scheme://host[:port]) whose pages may call this listener from a browser, or "*"
  // for any (not with credentials). Empty: no CORS headers, and WebSocket upgrades from any
  // origin. Set: preflights answered here, the CORS headers on actual responses, and a
  // WebSocket upgrade from another origin (not listed, not this listener's own) refused 403.
  std::vector<std::string> cors_origins = {};
  bool cors_credentials = false;  // Access-Control-Allow-Credentials: true
  JwtOptions jwt = {};
  std::vector<RateLimit> rate_limits = {};
  // Clients remembered per rate limit at most: under a flood of distinct addresses the least
  // recently seen are forgotten (they start again with a full burst), so memory stays bounded.
  std::size_t rate_limit_clients = 100'000;
  // One info line per request: time, address, method, path (no query), status, bytes, ms,
  // request id and trace id.
  bool access_log = false;
  // The application's own check, after the built-in ones (CORS, token, rate limit), on every
  // request and upgrade of the public listener: return a response to answer with it (401,
  // 403, 429, anything), or nullopt to let the request through, with whatever headers it set.
  // `binding` is the actor's binding ("" for static files). Runs on an I/O thread: it must not
  // block; what it throws is a 500 (logged).
  std::function<std::optional<Response>(Request& request, std::string_view binding)> on_request = {};
};

// "" if these options could serve, else what is wrong (a bad CIDR, another forwarded header, a bad origin, "*" with
// credentials, a JWT key that does not load, a secret shorter than 32 bytes).
std::string check_edge_options(const EdgeOptions& options);

}  // namespace cairn::gateway
