// Which actor a request is for: the route matching its path and the actor name from its
// query. Used by the HTTP session before it touches the runtime.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cairn/gateway/gateway.hpp"
#include "cairn/http.hpp"
#include "cairn/result.hpp"

namespace cairn::gateway {

struct Target {
  const Route* route;
  std::string name;
};

// nullopt if no route has the request's path; invalid_argument (quoting the parameter and
// limits::max_actor_name_bytes) for a missing, empty, over-long or malformed actor name.
std::optional<Result<Target>> match_route(const std::vector<Route>& routes, const Request& request);

}  // namespace cairn::gateway
