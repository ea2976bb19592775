// Which actor a request is for: the route matching its path and the actor name from its
// query. Used by the HTTP session before it touches the runtime.
#pragma once

#include <optional>
#include <string>
#include <string_view>
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

// The generic route: /objects/<BINDING>/<name>[/<rest>][?query] goes to actor (BINDING, name)
// with the target /<rest>[?query]. The name is one percent-decoded path segment.
struct ObjectTarget {
  std::string binding;
  std::string name;
  std::string target;  // what the actor's fetch() sees
};
inline constexpr std::string_view objects_prefix = "/objects/";
// nullopt if the path is not under objects_prefix; not_found for a binding not in
// `bindings`; invalid_argument for a missing or malformed name.
std::optional<Result<ObjectTarget>> match_object_route(const std::vector<std::string>& bindings,
                                                       std::string_view target);

// invalid_argument unless `name` is 1 to limits::max_actor_name_bytes bytes without control
// characters; `what` names it in the message.
Result<void> check_actor_name(const std::string& what, std::string_view name);

}  // namespace cairn::gateway
