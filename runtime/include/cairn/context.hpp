// What an actor instance sees of the runtime: its id, its database, its sockets, the time.
// Handed to the actor's constructor; valid for the instance's lifetime, on its thread only.
#pragma once

#include <string>
#include <vector>

#include "cairn/actor_id.hpp"
#include "cairn/clock.hpp"
#include "cairn/http.hpp"
#include "cairn/result.hpp"
#include "cairn/sql.hpp"
#include "cairn/websocket.hpp"

namespace cairn {

class Context {
 public:
  virtual ~Context() = default;
  virtual const ActorId& id() const = 0;
  virtual Sql& sql() = 0;
  virtual Clock::time_point now() const = 0;

  // Accepts the upgrade `request` as a WebSocket of this actor with `tags` (at most
  // limits::max_websocket_tags of limits::max_websocket_tag_bytes each). Return the result
  // from fetch(). Fails with invalid_argument for a request that is not an upgrade, or for
  // bad tags (then return Response::error(result.error())).
  virtual Result<Response> accept_websocket(const Request& request,
                                            std::vector<std::string> tags = {}) = 0;
  // This actor's open sockets, all of them or those carrying `tag`.
  virtual std::vector<WebSocket> websockets(const std::string& tag = {}) = 0;
};

}  // namespace cairn
