#include "edge.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <random>
#include <stdexcept>

#include <boost/asio/ip/address_v6.hpp>

namespace cairn::gateway {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Random hex digits from a per-thread generator (ids must be unique, not secret).
std::string random_hex(std::size_t digits) {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digits);
  while (out.size() < digits) {
    auto bits = generator();
    for (int i = 0; i < 16 && out.size() < digits; ++i, bits >>= 4) out += hex[bits & 0xf];
  }
  return out;
}

std::optional<boost::asio::ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return address;
}

std::array<unsigned char, 16> as_v6_bytes(const boost::asio::ip::address& address) {
  if (address.is_v4()) {
    return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4()).to_bytes();
  }
  return address.to_v6().to_bytes();
}

// One node of a Forwarded for= or X-Forwarded-For list: an address, perhaps quoted, in
// brackets, with a port; nullopt for what is not one ("unknown", "_hidden").
std::optional<boost::asio::ip::address> forwarded_node(std::string_view node) {
  node = trim(node);
  if (node.size() >= 2 && node.front() == '"' && node.back() == '"') node = node.substr(1, node.size() - 2);
  if (!node.empty() && node.front() == '[') {
    auto close = node.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return parse_address(node.substr(1, close - 1));
  }
  if (std::count(node.begin(), node.end(), ':') == 1) node = node.substr(0, node.find(':'));  // v4:port
  return parse_address(node);
}

// The nodes header `name` lists, nearest proxy's last (nullopt for one that is not an
// address: "unknown", an obfuscated name, garbage).
std::vector<std::optional<boost::asio::ip::address>> forwarded_chain(const boost::beast::http::fields& headers,
                                                                     std::string_view name) {
  std::vector<std::optional<boost::asio::ip::address>> chain;
  if (boost::beast::iequals(name, "Forwarded")) {
    auto forwarded = headers.equal_range("Forwarded");
    for (auto it = forwarded.first; it != forwarded.second; ++it) {
      std::string_view value = it->value();
      std::size_t start = 0;
      while (start <= value.size()) {
        auto end = value.find(',', start);
        if (end == std::string_view::npos) end = value.size();
        std::string_view element = value.substr(start, end - start);
        std::optional<boost::asio::ip::address> node;
        bool has_for = false;
        std::size_t pair_start = 0;
        while (pair_start <= element.size()) {
          auto pair_end = element.find(';', pair_start);
          if (pair_end == std::string_view::npos) pair_end = element.size();
          auto pair = trim(element.substr(pair_start, pair_end - pair_start));
          if (pair.size() > 4 && (pair.substr(0, 4) == "for=" || pair.substr(0, 4) == "For=" ||
                                  pair.substr(0, 4) == "FOR=")) {
            has_for = true;
            node = forwarded_node(pair.substr(4));
          }
          pair_start = pair_end + 1;
        }
        chain.push_back(has_for ? node : std::nullopt);
        start = end + 1;
      }
    }
    return chain;
  }
  auto xff = headers.equal_range(boost::beast::string_view(name.data(), name.size()));
  for (auto it = xff.first; it != xff.second; ++it) {
    std::string_view value = it->value();
    std::size_t start = 0;
    while (start <= value.size()) {
      auto end = value.find(',', start);
      if (end == std::string_view::npos) end = value.size();
      chain.push_back(forwarded_node(value.substr(start, end - start)));
      start = end + 1;
    }
  }
  return chain;
}

Result<double> parse_number(std::string_view text, const char* what) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value <= 0) {
    return fail(Code::invalid_argument, std::string(what) + " '" + std::string(text) + "' is not a positive number");
  }
  return value;
}

}  // namespace

bool RequestRule::matches(std::string_view method, std::string_view request_path,
                          std::string_view request_binding) const {
  // GET covers HEAD: a HEAD is answered as the GET would be, without the body.
  if (!methods.empty() && std::find(methods.begin(), methods.end(), method) == methods.end() &&
      !(method == "HEAD" && std::find(methods.begin(), methods.end(), "GET") != methods.end())) {
    return false;
  }
  if (everything) return true;
  if (!binding.empty()) return binding == request_binding;
  return prefix ? request_path.starts_with(path) : request_path == path;
}

Result<RequestRule> parse_request_rule(std::string_view text) {
  RequestRule rule;
  rule.text = std::string(trim(text));
  std::string_view rest = rule.text;
  auto bad = [&](const std::string& why) -> Result<RequestRule> {
    return fail(Code::invalid_argument, "rule '" + rule.text + "': " + why +
                                            " (write \"[METHODS] TARGET\": \"POST /book\", \"FLIGHT\", "
                                            "\"GET,HEAD /objects/COUNTER/*\", \"*\")");
  };
  if (rest.empty()) return bad("empty");
  std::string_view target = rest;
  if (auto space = rest.find(' '); space != std::string_view::npos) {
    std::string_view methods = rest.substr(0, space);
    target = trim(rest.substr(space + 1));
    if (methods != "*") {
      std::size_t start = 0;
      while (start <= methods.size()) {
        auto end = methods.find(',', start);
        if (end == std::string_view::npos) end = methods.size();
        auto method = methods.substr(start, end - start);
        if (method.empty() || !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
          return bad("'" + std::string(method) + "' is not a method (upper case, e.g. GET)");
        }
        rule.methods.emplace_back(method);
        start = end + 1;
      }
    }
  }
  if (target.empty() || target.find(' ') != std::string_view::npos) return bad("one target after the methods");
  if (target == "*") {
    rule.everything = true;
  } else if (target.front() == '/') {
    rule.prefix = target.back() == '*';
    rule.path = std::string(rule.prefix ? target.substr(0, target.size() - 1) : target);
    if (rule.path.find('*') != std::string::npos) return bad("'*' only at the end of a path");
  } else {
    if (!std::all_of(target.begin(), target.end(), is_token_char)) {
      return bad("'" + std::string(target) + "' is neither a path (/...) nor a binding name");
    }
    rule.binding = std::string(target);
  }
  return rule;
}

Result<RateLimit> parse_rate_limit(std::string_view text) {
  auto bad = [&](const std::string& why) -> Result<RateLimit> {
    return fail(Code::invalid_argument, "rate limit '" + std::string(trim(text)) + "': " + why +
                                            " (write \"[METHODS] TARGET RATE/UNIT [BURST]\": \"POST /book 5/s 10\")");
  };
  std::vector<std::string_view> words;
  std::string_view rest = trim(text);
  while (!rest.empty()) {
    auto space = rest.find(' ');
    words.push_back(rest.substr(0, space));
    rest = space == std::string_view::npos ? std::string_view() : trim(rest.substr(space + 1));
  }
  // The rate is the first word with a '/' that is not a path.
  std::size_t at = 0;
  while (at < words.size() && (words[at].find('/') == std::string_view::npos || words[at].front() == '/')) ++at;
  if (at == words.size() || at == 0) return bad("a target and a rate are needed");
  if (words.size() > at + 2) return bad("too many words");
  std::string rule_text;
  for (std::size_t i = 0; i < at; ++i) rule_text += (i ? " " : "") + std::string(words[i]);
  auto rule = parse_request_rule(rule_text);
  if (!rule) return rule.error();
  auto rate_word = words[at];
  auto slash = rate_word.find('/');
  auto count = parse_number(rate_word.substr(0, slash), "the rate");
  if (!count) return bad(count.error().message);
  auto unit = rate_word.substr(slash + 1);
  double per = unit == "s" ? 1 : unit == "min" ? 60 : unit == "h" ? 3600 : 0;
  if (per == 0) return bad("the unit is s, min or h");
  RateLimit out{std::move(*rule), *count / per, 1};
  out.burst = std::max(1.0, std::ceil(out.rate));
  if (words.size() == at + 2) {
    auto burst = parse_number(words[at + 1], "the burst");
    if (!burst) return bad(burst.error().message);
    if (*burst < 1) return bad("the burst is at least 1");
    out.burst = *burst;
  }
  return out;
}

std::string check_edge_options(const EdgeOptions& options) {
  if (auto networks = Networks::parse(options.trusted_proxies); !networks) return networks.error().message;
  if (!boost::beast::iequals(options.forwarded_header, "X-Forwarded-For") &&
      !boost::beast::iequals(options.forwarded_header, "Forwarded")) {
    return "the forwarded header is X-Forwarded-For or Forwarded, not '" + options.forwarded_header + "'";
  }
  for (const auto& origin : options.cors_origins) {
    if (origin == "*") {
      if (options.cors_credentials) {
        return "CORS origin '*' cannot go with credentials (browsers refuse it): list the origins";
      }
      continue;
    }
    auto scheme = origin.find("://");
    if ((origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) || scheme + 3 >= origin.size() ||
        origin.find('/', scheme + 3) != std::string::npos) {
      return "CORS origin '" + origin + "' is not scheme://host[:port] (e.g. https://app.example.com)";
    }
  }
  for (const auto& rule : options.jwt.required) {
    if (!options.jwt.enabled()) return "a bearer token is required for '" + rule.text + "' but no JWT key is given";
  }
  try {
    if (options.jwt.enabled()) JwtVerifier check(options.jwt);
  } catch (const std::exception& e) {
    return e.what();
  }
  for (const auto& limit : options.rate_limits) {
    if (!(limit.rate > 0) || !(limit.burst >= 1)) return "rate limit '" + limit.rule.text + "': a rate > 0, a burst >= 1";
  }
  if (!options.rate_limits.empty() && options.rate_limit_clients == 0) return "rate-limit clients must be at least 1";
  return {};
}

Result<Networks> Networks::parse(const std::vector<std::string>& cidrs) {
  Networks out;
  for (const auto& text : cidrs) {
    auto slash = text.find('/');
    auto address = parse_address(trim(std::string_view(text).substr(0, slash)));
    if (!address) return fail(Code::invalid_argument, "trusted proxy '" + text + "' is not an address or a CIDR");
    Network network{as_v6_bytes(*address), 128};
    unsigned width = address->is_v4() ? 32 : 128;
    if (slash != std::string::npos) {
      auto bits = std::string_view(text).substr(slash + 1);
      unsigned prefix = 0;
      auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
      if (ec != std::errc() || end != bits.data() + bits.size() || prefix > width) {
        return fail(Code::invalid_argument, "trusted proxy '" + text + "': the prefix is 0 to " + std::to_string(width));
      }
      network.prefix = prefix + (128 - width);
    }
    out.networks_.push_back(network);
  }
  return out;
}

bool Networks::contains(const boost::asio::ip::address& address) const {
  auto bytes = as_v6_bytes(address);
  for (const auto& network : networks_) {
    unsigned full = network.prefix / 8;
    unsigned rest = network.prefix % 8;
    if (!std::equal(bytes.begin(), bytes.begin() + full, network.bytes.begin())) continue;
    if (rest != 0) {
      auto mask = static_cast<unsigned char>(0xff << (8 - rest));
      if ((bytes[full] & mask) != (network.bytes[full] & mask)) continue;
    }
    return true;
  }
  return false;
}

std::string address_text(const boost::asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

std::string client_address(const boost::asio::ip::address& peer, const boost::beast::http::fields& headers,
                           const Networks& trusted, std::string_view header) {
  if (trusted.empty() || !trusted.contains(peer)) return address_text(peer);
  // From the nearest proxy outwards: the first address that is not a trusted proxy is the
  // client; what lies further out the client could have written itself, and is not read. A
  // node that is no address before that point: the last proxy known is the client we know.
  auto chain = forwarded_chain(headers, header);
  auto known = peer;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!*it) return address_text(known);
    if (!trusted.contains(**it)) return address_text(**it);
    known = **it;
  }
  return address_text(known);
}

std::string rate_limit_key(const std::string& address) {
  auto parsed = parse_address(address);
  if (!parsed || parsed->is_v4()) return address;
  auto bytes = parsed->to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

std::string new_request_id() { return random_hex(16); }

std::optional<std::string> usable_request_id(std::string_view value) {
  if (value.empty() || value.size() > 128) return std::nullopt;
  for (char c : value) {
    if (!is_token_char(c) && c != ':') return std::nullopt;
  }
  return std::string(value);
}

std::string next_traceparent(std::string_view incoming) {
  incoming = trim(incoming);
  // version 00: "00-" 32 hex "-" 16 hex "-" 2 hex; all-zero ids are invalid (W3C Trace Context).
  bool valid = incoming.size() == 55 && incoming.substr(0, 3) == "00-" && incoming[35] == '-' && incoming[52] == '-' &&
               is_hex(incoming.substr(3, 32)) && is_hex(incoming.substr(36, 16)) && is_hex(incoming.substr(53, 2)) &&
               incoming.substr(3, 32) != std::string(32, '0') && incoming.substr(36, 16) != std::string(16, '0');
  std::string trace = valid ? std::string(incoming.substr(3, 32)) : random_hex(32);
  std::string flags = valid ? std::string(incoming.substr(53, 2)) : "00";
  return "00-" + trace + "-" + random_hex(16) + "-" + flags;
}

bool same_origin(std::string_view origin, std::string_view host) {
  auto scheme = origin.find("://");
  if (scheme == std::string_view::npos || host.empty()) return false;
  auto authority = origin.substr(scheme + 3);
  if (authority == host) return true;
  // The default port may be written on one side only.
  auto strip = [](std::string_view text, std::string_view port) {
    return text.ends_with(port) ? text.substr(0, text.size() - port.size()) : text;
  };
  std::string_view port = origin.starts_with("https://") ? ":443" : ":80";
  return strip(authority, port) == strip(host, port);
}

Edge::Edge(EdgeOptions options) : options_(std::move(options)) {
  if (auto problem = check_edge_options(options_); !problem.empty()) throw std::invalid_argument(problem);
  trusted_ = std::move(*Networks::parse(options_.trusted_proxies));
  if (options_.jwt.enabled()) jwt_ = std::make_unique<JwtVerifier>(options_.jwt);
  for (const auto& limit : options_.rate_limits) {
    limiters_.push_back(std::make_unique<RateLimiter>(limit.rate, limit.burst, options_.rate_limit_clients));
  }
}

bool Edge::origin_allowed(std::string_view origin) const {
  for (const auto& allowed : options_.cors_origins) {
    if (allowed == "*" || allowed == origin) return true;
  }
  return false;
}

void Edge::add_cors_headers(Headers& headers, std::string_view origin) const {
  bool any = std::find(options_.cors_origins.begin(), options_.cors_origins.end(), "*") != options_.cors_origins.end();
  headers.emplace_back("Access-Control-Allow-Origin", any ? std::string("*") : std::string(origin));
  if (!any) headers.emplace_back("Vary", "Origin");
  if (options_.cors_credentials) headers.emplace_back("Access-Control-Allow-Credentials", "true");
  headers.emplace_back("Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
}

Response Edge::preflight(std::string_view origin, std::string_view requested_headers) const {
  Response out{204, {}, {}};
  add_cors_headers(out.headers, origin);
  out.headers.emplace_back("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
  // The headers the page asks for (its own, Authorization, traceparent): the actors decide
  // what they accept, as for a same-origin request. Only token characters are echoed.
  std::string allowed;
  for (char c : requested_headers) {
    if (is_token_char(c) || c == ',' || c == ' ') allowed += c;
  }
  if (!trim(allowed).empty()) out.headers.emplace_back("Access-Control-Allow-Headers", std::string(trim(allowed)));
  out.headers.emplace_back("Access-Control-Max-Age", "600");
  return out;
}

bool Edge::token_required(std::string_view method, std::string_view path, std::string_view binding) const {
  return std::any_of(options_.jwt.required.begin(), options_.jwt.required.end(),
                     [&](const RequestRule& rule) { return rule.matches(method, path, binding); });
}

Result<nlohmann::json> Edge::verify_bearer(std::optional<std::string_view> authorization) const {
  if (!authorization) return fail(Code::unauthenticated, "this route needs \"Authorization: Bearer <token>\"");
  auto value = trim(*authorization);
  if (value.size() < 7 || !(value.substr(0, 7) == "Bearer " || value.substr(0, 7) == "bearer ")) {
    return fail(Code::unauthenticated, "this route needs \"Authorization: Bearer <token>\"");
  }
  return jwt_->verify(trim(value.substr(7)), std::chrono::system_clock::now());
}

std::optional<double> Edge::over_limit(std::string_view method, std::string_view path, std::string_view binding,
                                       std::string_view client) {
  auto now = RateLimiter::Clock::now();
  for (std::size_t i = 0; i < limiters_.size(); ++i) {
    if (!options_.rate_limits[i].rule.matches(method, path, binding)) continue;
    if (auto wait = limiters_[i]->take(client, now)) return wait;
  }
  return std::nullopt;
}

std::size_t Edge::rate_limited_clients() const {
  std::size_t n = 0;
  for (const auto& limiter : limiters_) n += limiter->clients();
  return n;
}

}  // namespace cairn::gateway
