// WaypointMap: the collaborative map of the seeds' "real-time map with hibernation". One
// instance per map id; its pin is stored durably (it survives eviction and restarts, where
// the seed kept it in memory), broadcast as {"type":"pinUpdate","location":{lat,lng}} to
// every socket, and sent to each new socket. The heartbeat {"type":"ping",...} is answered
// by the runtime's auto-response without waking the map. Malformed messages get
// {"type":"error","error":...} back instead of the seed's silence.
#pragma once

#include <cairn/actor.hpp>
#include <cairn/context.hpp>
#include <cmath>
#include <memory>
#include <optional>
#include <string>

class WaypointMap final : public cairn::Actor {
 public:
  explicit WaypointMap(cairn::Context& ctx) : ctx_(ctx) {
    (void)ctx_.set_websocket_auto_response(cairn::AutoResponse::heartbeat());
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS pin (lat REAL NOT NULL, lng REAL NOT NULL)");
  }

  cairn::Response fetch(const cairn::Request& request) override {
    if (!request.is_websocket_upgrade()) {
      return cairn::Response::json(426, {{"error", "/api/map expects a WebSocket upgrade"}, {"status", 426}});
    }
    auto accepted = ctx_.accept_websocket(request);
    if (!accepted) return cairn::Response::error(accepted.error());
    if (auto location = pin()) {
      for (auto& socket : ctx_.websockets()) {
        if (socket.id() == request.websocket) socket.send(update(*location).dump());
      }
    }
    return *accepted;
  }

  void on_message(cairn::WebSocket& socket, std::string_view message, bool binary) override {
    auto error = [&](const std::string& what) {
      socket.send(cairn::json{{"type", "error"}, {"error", what}}.dump());
    };
    auto data = binary ? cairn::json() : cairn::json::parse(message, nullptr, false);
    if (!data.is_object() || !data.contains("type") || !data["type"].is_string()) {
      return error(R"(a message is a JSON object with a "type": "setPin" or "ping")");
    }
    if (data["type"] != "setPin") return error("unknown message type '" + data["type"].get<std::string>() + "'");
    const auto& location = data.contains("location") ? data["location"] : cairn::json();
    if (!location.is_object() || !location.contains("lat") || !location.contains("lng") ||
        !location["lat"].is_number() || !location["lng"].is_number() ||
        std::abs(location["lat"].get<double>()) > 90 || std::abs(location["lng"].get<double>()) > 180) {
      return error(R"(setPin needs "location": {"lat": -90..90, "lng": -180..180})");
    }
    cairn::json pinned{{"lat", location["lat"].get<double>()}, {"lng", location["lng"].get<double>()}};
    ctx_.sql().exec("DELETE FROM pin");
    ctx_.sql().exec("INSERT INTO pin VALUES (?, ?)", pinned["lat"].get<double>(), pinned["lng"].get<double>());
    auto broadcast = std::make_shared<const std::string>(update(pinned).dump());
    for (auto& other : ctx_.websockets()) other.send(broadcast);  // after the commit
  }

 private:
  static cairn::json update(const cairn::json& location) {
    return {{"type", "pinUpdate"}, {"location", location}};
  }
  std::optional<cairn::json> pin() {
    auto rows = ctx_.sql().exec("SELECT lat, lng FROM pin");
    if (rows.size() == 0) return std::nullopt;
    const auto& row = rows.one();
    return cairn::json{{"lat", std::get<double>(row["lat"])}, {"lng", std::get<double>(row["lng"])}};
  }
  cairn::Context& ctx_;
};
