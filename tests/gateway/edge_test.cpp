// The public edge's parts, one by one: rules, trusted proxies and the client's address, request
// ids and traces, CORS origins, the token bucket in bounded memory, JWT verification.
#include <doctest/doctest.h>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>

#include <chrono>
#include <string>

#include "cairn/log_context.hpp"
#include "edge.hpp"
#include "jwt.hpp"
#include "jwt_sign.hpp"
#include "rate_limiter.hpp"

using namespace cairn;
using namespace cairn::gateway;
using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

namespace {

boost::beast::http::fields headers(std::initializer_list<std::pair<const char*, const char*>> list) {
  boost::beast::http::fields out;
  for (const auto& [name, value] : list) out.insert(name, value);
  return out;
}

Networks networks(std::vector<std::string> cidrs) {
  auto parsed = Networks::parse(cidrs);
  REQUIRE(parsed.ok());
  return std::move(*parsed);
}

}  // namespace

TEST_CASE("request rules match by method and path and prefix and binding: bad ones are refused") {
  auto rule = parse_request_rule("POST /book-seat");
  REQUIRE(rule.ok());
  CHECK(rule->matches("POST", "/book-seat", "FLIGHT"));
  CHECK_FALSE(rule->matches("GET", "/book-seat", "FLIGHT"));
  CHECK_FALSE(rule->matches("POST", "/book-seat/x", "FLIGHT"));
  auto binding = parse_request_rule("FLIGHT");
  REQUIRE(binding.ok());
  CHECK(binding->matches("GET", "/seats", "FLIGHT"));
  CHECK_FALSE(binding->matches("GET", "/seats", "COUNTER"));
  CHECK_FALSE(binding->matches("GET", "/index.html", ""));
  CHECK(parse_request_rule("GET /seats")->matches("HEAD", "/seats", "FLIGHT"));  // GET covers HEAD
  CHECK_FALSE(parse_request_rule("POST /seats")->matches("HEAD", "/seats", "FLIGHT"));
  auto prefix = parse_request_rule("GET,HEAD /objects/COUNTER/*");
  REQUIRE(prefix.ok());
  CHECK(prefix->matches("HEAD", "/objects/COUNTER/a/", "COUNTER"));
  CHECK_FALSE(prefix->matches("POST", "/objects/COUNTER/a/", "COUNTER"));
  CHECK_FALSE(prefix->matches("GET", "/objects/CHAT/a/", "CHAT"));
  auto all = parse_request_rule("*");
  REQUIRE(all.ok());
  CHECK(all->matches("DELETE", "/anything", ""));
  for (const char* bad : {"", "post /x", "POST /a*b", "POST /x /y", "FLI GHT!", "GET bad/target"}) {
    INFO(bad);
    auto refused = parse_request_rule(bad);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == Code::invalid_argument);
  }
}

TEST_CASE("rate limits are parsed with their unit and burst") {
  auto limit = parse_rate_limit("POST /book-seat 5/s 10");
  REQUIRE(limit.ok());
  CHECK(limit->rate == doctest::Approx(5));
  CHECK(limit->burst == doctest::Approx(10));
  CHECK(limit->rule.matches("POST", "/book-seat", "FLIGHT"));
  auto per_minute = parse_rate_limit("* 120/min");
  REQUIRE(per_minute.ok());
  CHECK(per_minute->rate == doctest::Approx(2));
  CHECK(per_minute->burst == doctest::Approx(2));
  auto slow = parse_rate_limit("FLIGHT 1/h");
  REQUIRE(slow.ok());
  CHECK(slow->burst == doctest::Approx(1));
  for (const char* bad : {"5/s", "POST /x", "POST /x 5/day", "POST /x -1/s", "POST /x 5/s 0.5", "POST /x 5/s 2 3",
                          "POST /x abc/s"}) {
    INFO(bad);
    CHECK_FALSE(parse_rate_limit(bad).ok());
  }
}

TEST_CASE("the client's address: a spoofed X-Forwarded-For is ignored unless the peer is a trusted proxy") {
  auto peer = ip::make_address("127.0.0.1");
  auto spoofed = headers({{"X-Forwarded-For", "203.0.113.9"}});
  CHECK(client_address(peer, spoofed, networks({})) == "127.0.0.1");
  CHECK(client_address(peer, spoofed, networks({"10.0.0.0/8"})) == "127.0.0.1");
  CHECK(client_address(peer, spoofed, networks({"127.0.0.0/8"})) == "203.0.113.9");
  // The nearest untrusted address: what the client wrote itself further out is not believed.
  auto chain = headers({{"X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.1.2.3"}});
  CHECK(client_address(peer, chain, networks({"127.0.0.1", "10.0.0.0/8"})) == "203.0.113.9");
  // Only the header the proxies write is read: a client's own Forwarded passes an
  // X-Forwarded-For proxy untouched, and must not name the client.
  auto both = headers({{"Forwarded", "for=192.0.2.99"}, {"X-Forwarded-For", "203.0.113.9"}});
  CHECK(client_address(peer, both, networks({"127.0.0.1"})) == "203.0.113.9");
  CHECK(client_address(peer, both, networks({"127.0.0.1"}), "Forwarded") == "192.0.2.99");
  // Forwarded (RFC 7239), when chosen: ports, IPv6 in brackets.
  auto forwarded = headers({{"Forwarded", "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2"},
                            {"X-Forwarded-For", "192.0.2.1"}});
  CHECK(client_address(peer, forwarded, networks({"127.0.0.1/32", "10.0.0.0/8"}), "Forwarded") == "2001:db8::7");
  CHECK(client_address(peer, headers({{"Forwarded", "for=192.0.2.60:80"}}), networks({"127.0.0.1"}), "Forwarded") ==
        "192.0.2.60");
  // What the client wrote further out, even garbage, does not hide it.
  CHECK(client_address(peer, headers({{"X-Forwarded-For", "unknown, 203.0.113.9"}}), networks({"127.0.0.1"})) ==
        "203.0.113.9");
  // No address where the nearest proxy should have written one: the proxy is all we know.
  CHECK(client_address(peer, headers({{"X-Forwarded-For", "not an address"}}), networks({"127.0.0.1"})) == "127.0.0.1");
  CHECK(client_address(peer, headers({{"X-Forwarded-For", "203.0.113.9, unknown, 10.0.0.3"}}),
                       networks({"127.0.0.1", "10.0.0.0/8"})) == "10.0.0.3");
  CHECK(client_address(peer, headers({{"Forwarded", "by=10.0.0.1"}}), networks({"127.0.0.1"}), "Forwarded") ==
        "127.0.0.1");
  // An IPv4 peer on an IPv6 socket is shown, and matched, as IPv4.
  auto mapped = ip::make_address("::ffff:127.0.0.1");
  CHECK(address_text(mapped) == "127.0.0.1");
  CHECK(networks({"127.0.0.0/8"}).contains(mapped));
  CHECK_FALSE(networks({"127.0.0.0/8"}).contains(ip::make_address("128.0.0.1")));
  CHECK(networks({"2001:db8::/32"}).contains(ip::make_address("2001:db8:ffff::1")));
  CHECK_FALSE(networks({"2001:db8::/33"}).contains(ip::make_address("2001:db8:ffff::1")));
  for (const char* bad : {"10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"}) {
    INFO(bad);
    CHECK_FALSE(Networks::parse({bad}).ok());
  }
}

TEST_CASE("request ids and traceparents: a valid trace is continued with a new span and anything else starts one") {
  auto a = new_request_id();
  CHECK(a.size() == 16);
  CHECK(a != new_request_id());
  CHECK(usable_request_id("req-42_a.b:c") == std::optional<std::string>("req-42_a.b:c"));
  CHECK_FALSE(usable_request_id("has space").has_value());
  CHECK_FALSE(usable_request_id("line\nbreak").has_value());
  CHECK_FALSE(usable_request_id(std::string(129, 'a')).has_value());
  CHECK_FALSE(usable_request_id("").has_value());
  const std::string incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto next = next_traceparent(incoming);
  REQUIRE(next.size() == 55);
  CHECK(next.substr(0, 36) == incoming.substr(0, 36));  // the same trace
  CHECK(next.substr(36, 16) != incoming.substr(36, 16));  // a span of its own
  CHECK(next.substr(52) == "-01");
  CHECK(trace_id_of(next) == "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad : {"", "garbage", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}) {
    INFO(bad);
    auto started = next_traceparent(bad);
    REQUIRE(started.size() == 55);
    CHECK(started.substr(0, 3) == "00-");
    CHECK(started.substr(3, 32) != "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(started.substr(52) == "-00");
  }
}

TEST_CASE("CORS: listed origins and '*' without credentials and and same-origin pages") {
  EdgeOptions options;
  options.cors_origins = {"https://app.example.com"};
  Edge edge(options);
  CHECK(edge.origin_allowed("https://app.example.com"));
  CHECK_FALSE(edge.origin_allowed("https://evil.example.com"));
  auto preflight = edge.preflight("https://app.example.com", "content-type, authorization\r\nX-Evil: 1");
  CHECK(preflight.status == 204);
  CHECK(find_header(preflight.headers, "Access-Control-Allow-Origin") == "https://app.example.com");
  CHECK(find_header(preflight.headers, "Vary") == "Origin");
  // Only token characters are echoed: no header can be smuggled into the answer.
  auto allowed = find_header(preflight.headers, "Access-Control-Allow-Headers");
  REQUIRE(allowed);
  CHECK(allowed->find('\r') == std::string_view::npos);
  CHECK(allowed->find(':') == std::string_view::npos);
  CHECK(same_origin("http://127.0.0.1:8787", "127.0.0.1:8787"));
  CHECK(same_origin("https://example.com", "example.com:443"));
  CHECK(same_origin("http://example.com:80", "example.com"));
  CHECK_FALSE(same_origin("https://example.com", "example.com:8443"));
  CHECK_FALSE(same_origin("http://evil.com", "example.com"));
  EdgeOptions star;
  star.cors_origins = {"*"};
  star.cors_credentials = true;
  CHECK(check_edge_options(star).find("credentials") != std::string::npos);
  star.cors_credentials = false;
  CHECK(check_edge_options(star).empty());
  EdgeOptions bad_origin;
  bad_origin.cors_origins = {"app.example.com"};
  CHECK_FALSE(check_edge_options(bad_origin).empty());
  bad_origin.cors_origins = {"https://app.example.com/path"};
  CHECK_FALSE(check_edge_options(bad_origin).empty());
}

TEST_CASE("rate limits count an IPv6 client by its /64 and an IPv4 one by its address") {
  CHECK(rate_limit_key("203.0.113.9") == "203.0.113.9");
  CHECK(rate_limit_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64");
  CHECK(rate_limit_key("2001:db8:1:2:bbbb::7") == rate_limit_key("2001:db8:1:2:aaaa::1"));
  CHECK(rate_limit_key("2001:db8:1:3::1") != rate_limit_key("2001:db8:1:2::1"));
}

TEST_CASE("a token bucket: the burst at once and then the rate and per client") {
  RateLimiter limiter(2, 3, 100);  // 2/s, burst 3
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.take("a", t0).has_value());
  auto wait = limiter.take("a", t0);
  REQUIRE(wait.has_value());
  CHECK(*wait == doctest::Approx(0.5));
  CHECK_FALSE(limiter.take("b", t0).has_value());  // another client has its own
  CHECK_FALSE(limiter.take("a", t0 + 500ms).has_value());  // one token back after 1/rate
  CHECK(limiter.take("a", t0 + 500ms).has_value());
  // Idle long enough: the full burst again, never more.
  auto later = t0 + 60s;
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.take("a", later).has_value());
  CHECK(limiter.take("a", later).has_value());
}

TEST_CASE("a flood of distinct clients keeps the rate limiter within its bound") {
  RateLimiter limiter(1, 1, 1000);
  auto now = RateLimiter::Clock::now();
  for (int i = 0; i < 100'000; ++i) limiter.take("client-" + std::to_string(i), now);
  CHECK(limiter.clients() <= 1000 + 16);  // per shard, rounded up
  CHECK(limiter.clients() >= 900);
  // The most recent are remembered (refused again), the oldest forgotten (a fresh burst).
  CHECK(limiter.take("client-99999", now).has_value());
  CHECK_FALSE(limiter.take("client-0", now).has_value());
}

TEST_CASE("JWT HS256: a valid token's claims: expired and early and forged and other alg and issuer or audience refused") {
  JwtOptions options;
  options.hs256_secret = std::string(32, 'k');
  options.issuer = "https://login.example.com/";
  options.audience = "seat-booking";
  options.clock_skew = 30s;
  JwtVerifier verifier(options);
  auto now = std::chrono::system_clock::now();
  auto at = [&](std::chrono::seconds offset) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>((now + offset).time_since_epoch()).count());
  };
  nlohmann::json claims{{"sub", "alice"}, {"iss", options.issuer}, {"aud", "seat-booking"}, {"exp", at(300s)}};
  auto good = verifier.verify(testing::hs256_token(claims, options.hs256_secret), now);
  REQUIRE(good.ok());
  CHECK((*good)["sub"] == "alice");
  auto listed = claims;
  listed["aud"] = {"other", "seat-booking"};
  CHECK(verifier.verify(testing::hs256_token(listed, options.hs256_secret), now).ok());
  auto refused = [&](const std::string& token, const std::string& why) {
    INFO(why);
    auto result = verifier.verify(token, now);
    REQUIRE_FALSE(result.ok());
    INFO(result.error().message);
    CHECK(result.error().code == Code::unauthenticated);
    CHECK(result.error().message.find(why) != std::string::npos);
  };
  auto expired = claims;
  expired["exp"] = at(-60s);
  refused(testing::hs256_token(expired, options.hs256_secret), "expired");
  auto within_skew = claims;
  within_skew["exp"] = at(-10s);
  CHECK(verifier.verify(testing::hs256_token(within_skew, options.hs256_secret), now).ok());
  auto early = claims;
  early["nbf"] = at(120s);
  refused(testing::hs256_token(early, options.hs256_secret), "not valid yet");
  auto no_exp = claims;
  no_exp.erase("exp");
  refused(testing::hs256_token(no_exp, options.hs256_secret), "exp");
  refused(testing::hs256_token(claims, std::string(32, 'x')), "bad signature");
  refused(testing::hs256_token(claims, options.hs256_secret, "HS512"), "HS256");
  // "none": no signature at all.
  refused(testing::b64url(R"({"alg":"none"})") + "." + testing::b64url(claims.dump()) + ".", "HS256");
  auto other_issuer = claims;
  other_issuer["iss"] = "https://evil.example.com/";
  refused(testing::hs256_token(other_issuer, options.hs256_secret), "issuer");
  auto other_audience = claims;
  other_audience["aud"] = "billing";
  refused(testing::hs256_token(other_audience, options.hs256_secret), "audience");
  refused("not-a-token", "not a JWT");
  refused("a.b.c", "base64url");
  auto token = testing::hs256_token(claims, options.hs256_secret);
  refused(token.substr(0, token.size() - 4), "bad signature");  // cut short
  JwtOptions short_secret;
  short_secret.hs256_secret = "too short";
  CHECK_THROWS_AS(JwtVerifier{short_secret}, std::invalid_argument);
}

TEST_CASE("JWT RS256: the public key verifies and another key's token and an HS256 token made with the PEM are refused") {
  testing::RsaKey key;
  testing::RsaKey other;
  JwtOptions options;
  options.rs256_public_key_pem = key.public_pem();
  JwtVerifier verifier(options);
  auto now = std::chrono::system_clock::now();
  double exp = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>((now + 60s).time_since_epoch()).count());
  nlohmann::json claims{{"sub", "bob"}, {"exp", exp}};
  auto good = verifier.verify(key.token(claims), now);
  REQUIRE(good.ok());
  CHECK((*good)["sub"] == "bob");
  CHECK_FALSE(verifier.verify(other.token(claims), now).ok());
  // The classic confusion: an HS256 token keyed with the public key's text.
  CHECK_FALSE(verifier.verify(testing::hs256_token(claims, options.rs256_public_key_pem), now).ok());
  JwtOptions bad;
  bad.rs256_public_key_pem = "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n";
  CHECK_THROWS_AS(JwtVerifier{bad}, std::invalid_argument);
  CHECK(base64url_decode(base64url_encode("any bytes \x01\xff")) == std::optional<std::string>("any bytes \x01\xff"));
  CHECK_FALSE(base64url_decode("a").has_value());
  CHECK_FALSE(base64url_decode("ab+c").has_value());
}
