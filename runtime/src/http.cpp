// Request/Response helpers: query parsing, percent-decoding, JSON responses.
#include "cairn/http.hpp"

#include <strings.h>

namespace cairn {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && ::strncasecmp(key.data(), name.data(), name.size()) == 0) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

Result<std::string> url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%') {
      int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
      if (i + 2 >= s.size() || hi < 0 || lo < 0) {
        return fail(Code::invalid_argument, plus_is_space ? "malformed percent-encoding in query string" : "malformed percent-encoding in path");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

Result<std::optional<std::string>> Request::query_param(std::string_view name) const {
  std::string_view q = query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq));
    if (!key) return key.error();
    if (*key != name) continue;
    auto value = url_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!value) return value.error();
    return std::optional<std::string>(std::move(*value));
  }
  return std::optional<std::string>{};
}

bool Request::is_websocket_upgrade() const {
  auto upgrade = header("Upgrade");
  return upgrade && upgrade->size() == 9 && ::strncasecmp(upgrade->data(), "websocket", 9) == 0;
}

Response Response::json(int status, const nlohmann::json& value) {
  return Response{status,
                  {{"Content-Type", "application/json"}},
                  value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

Response Response::error(const Error& error) {
  Response out = json(http_status(error.code), error.to_json());
  // Every answer that asks the client to come back later says when: 503 and 429 alike.
  if (error.code == Code::overloaded || error.code == Code::unavailable || error.code == Code::resource_exhausted) {
    out.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  }
  return out;
}

Response Response::method_not_allowed(std::string allow, std::string message) {
  Response out = error(Code::method_not_allowed, std::move(message));
  out.headers.emplace_back("Allow", std::move(allow));
  return out;
}

Response Response::switching_protocols() { return Response{101, {}, {}}; }

}  // namespace cairn
