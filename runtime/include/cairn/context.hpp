// What an actor instance sees of the runtime: its id, its database, its sockets, the time.
// Handed to the actor's constructor; valid for the instance's lifetime, on its thread only.
#pragma once

#include <optional>
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
  // This actor's open sockets, all of them or those carrying `tag`, in the order accepted.
  // After a wake this lists every socket still open, accepted by any earlier instance.
  virtual std::vector<WebSocket> websockets(const std::string& tag = {}) = 0;

  // Messages the runtime answers without waking this actor; kept while it is evicted (set it
  // in the constructor). nullopt clears it. invalid_argument for a rule that fails
  // AutoResponse::validate(). Takes effect at once, not at commit: it is not data.
  virtual Result<void> set_websocket_auto_response(std::optional<AutoResponse> rule) = 0;
  virtual std::optional<AutoResponse> websocket_auto_response() const = 0;
  // When the runtime last auto-responded on `socket`, or nullopt if it never has.
  virtual std::optional<Clock::time_point> auto_response_timestamp(const WebSocket& socket) const = 0;
};

}  // namespace cairn
