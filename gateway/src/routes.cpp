// Route matching and actor-name validation.
#include "routes.hpp"

#include "cairn/limits.hpp"

namespace cairn::gateway {

std::optional<Result<Target>> match_route(const std::vector<Route>& routes, const Request& request) {
  for (const auto& route : routes) {
    if (request.path() != route.path) continue;
    auto value = request.query_param(route.name_param);
    if (!value) {
      return Result<Target>(fail(Code::invalid_argument,
                                 "malformed query parameter '" + route.name_param + "'"));
    }
    if (!value->has_value()) {
      return Result<Target>(fail(Code::invalid_argument,
                                 "missing query parameter '" + route.name_param + "'"));
    }
    const std::string& name = **value;
    if (name.empty() || name.size() > limits::max_actor_name_bytes) {
      return Result<Target>(fail(Code::invalid_argument,
                                 "query parameter '" + route.name_param + "' must be 1 to " +
                                     std::to_string(limits::max_actor_name_bytes) + " bytes"));
    }
    for (unsigned char c : name) {
      if (c < 0x20 || c == 0x7f) {
        return Result<Target>(fail(Code::invalid_argument, "query parameter '" + route.name_param +
                                                               "' must not contain control characters"));
      }
    }
    return Result<Target>(Target{&route, name});
  }
  return std::nullopt;
}

}  // namespace cairn::gateway
