// Default hooks of cairn::Actor.
#include "cairn/actor.hpp"

#include <spdlog/spdlog.h>

namespace cairn {

Response Actor::fetch(const Request& request) {
  return Response::error(Code::not_found, "no route for " + std::string(request.path()));
}

void Actor::on_message(WebSocket&, std::string_view, bool) {}
// The gateway completes the close handshake itself; an actor only cleans up.
void Actor::on_close(WebSocket&, int, std::string_view) {}
void Actor::on_error(WebSocket&, std::string_view) {}
void Actor::on_alarm(const AlarmInfo& alarm) {
  spdlog::warn("alarm '{}' fell due for an actor class that does not override on_alarm",
               alarm.name);
}

}  // namespace cairn
