// Flight: the seat-booking actor of the demo (one instance per flight id). 60 seats, 1A to
// 10F, created on first use; booking a seat broadcasts the full seat map to the flight's
// WebSockets. HTTP: GET /seats, POST /book-seat, GET /ws (upgrade). RPC: getSeats, assignSeat.
// Its sockets are hibernatable: the instance may be evicted while they stay open. A socket
// may send {"type":"getSeats"} (answered with the seat map, waking the instance if needed)
// and the heartbeat {"type":"ping","id":..,"clientTime":..}, which the runtime answers with a
// pong without waking it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/actor.hpp"
#include "cairn/context.hpp"

namespace cairn::actors {

class Flight final : public Actor {
 public:
  static constexpr int rows = 10;
  static constexpr int seats_per_row = 6;
  static constexpr std::size_t max_name_bytes = 64;

  // Creates the seats table with 60 empty seats if it does not exist (idempotent).
  explicit Flight(Context& ctx);

  Methods methods() override;
  Response fetch(const Request& request) override;
  void on_message(WebSocket& socket, std::string_view message, bool binary) override;

  // Every seat in order: [{"seatNumber": "1A", "occupant": null}, ...].
  nlohmann::json get_seats();
  // Books `seat` for `name`, moving `name` out of any other seat (as in the tutorial).
  // invalid_argument for an unknown seat or a bad name, conflict for an occupied seat.
  Result<nlohmann::json> assign_seat(const std::string& seat, const std::string& name);

 private:
  Result<nlohmann::json> assign_seat_json(const nlohmann::json& body);
  void broadcast_seats();
  Context& ctx_;
};

}  // namespace cairn::actors
