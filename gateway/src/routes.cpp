// Route matching and actor-name validation.
#include "routes.hpp"

#include <algorithm>

#include "cairn/limits.hpp"

namespace cairn::gateway {

std::optional<Result<Target>> match_route(const std::vector<Route>& routes, const Request& request) {
  for (const auto& route : routes) {
    if (request.path() != route.path) continue;
    if (!route.fixed_name.empty()) return Result<Target>(Target{&route, route.fixed_name});
    auto value = request.query_param(route.name_param);
    if (!value) {
      return Result<Target>(fail(Code::invalid_argument,
                                 "malformed query parameter '" + route.name_param + "'"));
    }
    if (!value->has_value()) {
      if (!route.default_name.empty()) return Result<Target>(Target{&route, route.default_name});
      return Result<Target>(fail(Code::invalid_argument,
                                 "missing query parameter '" + route.name_param + "'"));
    }
    const std::string& name = **value;
    auto valid = check_actor_name("query parameter '" + route.name_param + "'", name);
    if (!valid) return Result<Target>(valid.error());
    return Result<Target>(Target{&route, name});
  }
  return std::nullopt;
}

Result<void> check_actor_name(const std::string& what, std::string_view name) {
  if (name.empty() || name.size() > limits::max_actor_name_bytes) {
    return fail(Code::invalid_argument, what + " must be 1 to " +
                                            std::to_string(limits::max_actor_name_bytes) +
                                            " bytes (limits::max_actor_name_bytes)");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return fail(Code::invalid_argument, what + " must not contain control characters");
    }
  }
  return {};
}

std::optional<Result<ObjectTarget>> match_object_route(const std::vector<std::string>& bindings,
                                                       std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = path.size() < target.size() ? target.substr(path.size()) : std::string_view{};
  if (path.substr(0, objects_prefix.size()) != objects_prefix) return std::nullopt;
  std::string_view rest = path.substr(objects_prefix.size());
  std::size_t slash = rest.find('/');
  std::string binding(rest.substr(0, slash));
  if (std::find(bindings.begin(), bindings.end(), binding) == bindings.end()) {
    return Result<ObjectTarget>(fail(Code::not_found, "no actor class '" + binding +
                                                          "' is served under " +
                                                          std::string(objects_prefix)));
  }
  if (slash == std::string_view::npos) {
    return Result<ObjectTarget>(fail(Code::invalid_argument, "the path needs an actor name: " +
                                                                 std::string(objects_prefix) +
                                                                 binding + "/<name>/..."));
  }
  rest = rest.substr(slash + 1);
  slash = rest.find('/');
  auto name = url_decode(rest.substr(0, slash), false);
  if (!name) return Result<ObjectTarget>(name.error());
  auto valid = check_actor_name("the actor name", *name);
  if (!valid) return Result<ObjectTarget>(valid.error());
  std::string forwarded = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  forwarded += query;
  return Result<ObjectTarget>(ObjectTarget{std::move(binding), std::move(*name), std::move(forwarded)});
}

}  // namespace cairn::gateway
