// AdminApi: routes, arguments, answers.
#include "admin_api.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <vector>

#include "cairn/limits.hpp"
#include "routes.hpp"

namespace cairn::gateway {
namespace {

constexpr std::string_view prefix = "/admin/";

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path = path.substr(slash + 1);
  }
  return out;
}

Response answer(const Result<nlohmann::json>& result, int status = 200) {
  if (!result) return Response::error(result.error());
  return Response::json(status, *result);
}

Response not_allowed(const char* allow, const std::string& route) {
  return Response::method_not_allowed(allow, "use " + std::string(allow) + " " + route);
}

Result<std::size_t> number_param(const Request& request, std::string_view name, std::size_t fallback) {
  auto value = request.query_param(name);
  if (!value) return value.error();
  if (!value->has_value()) return fallback;
  const std::string& text = **value;
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return fail(Code::invalid_argument, "query parameter '" + std::string(name) + "' must be a number");
  }
  return n;
}

Result<std::string> text_param(const Request& request, std::string_view name) {
  auto value = request.query_param(name);
  if (!value) return value.error();
  return value->value_or("");
}

Result<nlohmann::json> json_body(const Request& request) {
  auto body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return fail(Code::invalid_argument, "the body must be a JSON object");
  }
  return body;
}

}  // namespace

bool bearer_matches(std::string_view header, std::string_view token) {
  constexpr std::string_view scheme = "Bearer ";
  if (token.empty() || header.size() != scheme.size() + token.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    diff |= static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(header[i])) ^
                                       std::tolower(static_cast<unsigned char>(scheme[i])));
  }
  for (std::size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<unsigned char>(header[scheme.size() + i] ^ token[i]);
  }
  return diff == 0;
}

std::optional<Response> AdminApi::handle(const Request& request) const {
  std::string_view path = request.path();
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto parts = split_path(path.substr(prefix.size()));
  const std::string& method = request.method;

  if (parts.size() == 1 && parts[0] == "backup") {
    if (method != "POST") return not_allowed("POST", "/admin/backup");
    auto body = json_body(request);
    if (!body) return Response::error(body.error());
    if (!body->contains("dir") || !(*body)["dir"].is_string()) {
      return Response::error(Code::invalid_argument, "the body needs \"dir\": the backup's absolute path");
    }
    std::filesystem::path dir = (*body)["dir"].get<std::string>();
    if (!dir.is_absolute()) return Response::error(Code::invalid_argument, "\"dir\" must be an absolute path");
    return answer(admin_.backup(dir));
  }
  if (parts.size() == 1 && parts[0] == "top") {
    if (method != "GET") return not_allowed("GET", "/admin/top");
    auto window = number_param(request, "seconds", 60);
    if (!window) return Response::error(window.error());
    auto limit = number_param(request, "limit", limits::admin_default_top);
    if (!limit) return Response::error(limit.error());
    // Clamped before the conversion: a huge number must not wrap into the valid range.
    auto seconds = std::chrono::seconds(static_cast<std::int64_t>(std::min<std::size_t>(*window, 1'000'000)));
    return answer(admin_.top(seconds, *limit));
  }
  if (parts.empty() || parts[0] != "bindings") {
    return Response::error(Code::not_found, "no admin route " + std::string(path));
  }
  if (parts.size() == 1) {
    if (method != "GET") return not_allowed("GET", "/admin/bindings");
    return Response::json(200, {{"bindings", admin_.bindings()}});
  }
  auto binding = url_decode(parts[1], false);
  if (!binding) return Response::error(binding.error());
  if (parts.size() == 2 || parts[2] != "actors") {
    return Response::error(Code::not_found, "no admin route " + std::string(path));
  }
  if (parts.size() == 3) {
    if (method != "GET") return not_allowed("GET", "/admin/bindings/<binding>/actors");
    auto limit = number_param(request, "limit", 100);
    if (!limit) return Response::error(limit.error());
    auto name_prefix = text_param(request, "prefix");
    if (!name_prefix) return Response::error(name_prefix.error());
    auto after = text_param(request, "after");
    if (!after) return Response::error(after.error());
    return answer(admin_.list(*binding, *name_prefix, *after, *limit));
  }
  auto name = url_decode(parts[3], false);
  if (!name) return Response::error(name.error());
  if (auto valid = check_actor_name("the actor name", *name); !valid) return Response::error(valid.error());
  if (parts.size() == 4) {
    if (method == "GET") return answer(admin_.inspect(*binding, *name));
    if (method == "DELETE") return answer(admin_.remove(*binding, *name));
    return not_allowed("GET, DELETE", "/admin/bindings/<binding>/actors/<name>");
  }
  if (parts.size() != 5) return Response::error(Code::not_found, "no admin route " + std::string(path));
  std::string_view action = parts[4];
  if (action == "query") {
    if (method != "POST") return not_allowed("POST", "/admin/bindings/<binding>/actors/<name>/query");
    auto body = json_body(request);
    if (!body) return Response::error(body.error());
    if (!body->contains("sql") || !(*body)["sql"].is_string()) {
      return Response::error(Code::invalid_argument, "the body needs \"sql\": one read-only statement");
    }
    std::size_t max_rows = limits::admin_default_rows;
    if (body->contains("max_rows")) {
      if (!(*body)["max_rows"].is_number_unsigned()) {
        return Response::error(Code::invalid_argument, "\"max_rows\" must be a positive integer");
      }
      max_rows = (*body)["max_rows"].get<std::size_t>();
    }
    return answer(admin_.query(*binding, *name, (*body)["sql"].get<std::string>(), max_rows));
  }
  if (action == "export") {
    if (method != "GET") return not_allowed("GET", "/admin/bindings/<binding>/actors/<name>/export");
    auto bytes = admin_.export_database(*binding, *name);
    if (!bytes) return Response::error(bytes.error());
    return Response{200,
                    {{"Content-Type", "application/vnd.sqlite3"},
                     {"Content-Disposition", "attachment; filename=\"" + std::string(parts[1]) + "-" +
                                                 std::string(parts[3]) + ".sqlite\""}},
                    std::move(*bytes)};
  }
  if (action == "import") {
    if (method != "PUT") return not_allowed("PUT", "/admin/bindings/<binding>/actors/<name>/import");
    return answer(admin_.import_database(*binding, *name, request.body), 201);
  }
  if (action == "restore") {
    if (method != "POST") return not_allowed("POST", "/admin/bindings/<binding>/actors/<name>/restore");
    auto body = json_body(request);
    if (!body) return Response::error(body.error());
    const auto* at = body->is_object() && body->contains("at") ? &(*body)["at"] : nullptr;
    if (at == nullptr || !(at->is_string() || at->is_number_unsigned())) {
      return Response::error(Code::invalid_argument,
                             "the body needs \"at\": the moment to go back to, as RFC 3339 "
                             "(\"2026-12-02T10:15:00Z\") or Unix milliseconds");
    }
    auto moment = at->is_string() ? parse_moment(at->get<std::string>()) : Result<std::int64_t>(at->get<std::int64_t>());
    if (!moment) return Response::error(moment.error());
    return answer(admin_.restore(*binding, *name, *moment));
  }
  if (action == "evict") {
    if (method != "POST") return not_allowed("POST", "/admin/bindings/<binding>/actors/<name>/evict");
    auto evicted = admin_.evict(*binding, *name);
    if (!evicted) return Response::error(evicted.error());
    return Response::json(200, {{"evicted", *evicted}});
  }
  return Response::error(Code::not_found, "no admin route " + std::string(path));
}

}  // namespace cairn::gateway
