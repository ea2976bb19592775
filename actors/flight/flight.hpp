// Flight: the seat-booking actor of the demo (one instance per flight id). 60 seats, 1A to
// 10F, created on first use. A seat is `available`, `held` (by a hold token, until an
// expiry) or `booked` (by a passenger, with a booking token). Every change broadcasts the
// full seat map to the flight's WebSockets. A hold releases itself through a named alarm
// ("hold:<seat>") when it expires, waking the flight if it was evicted.
//
// HTTP: GET /seats, POST /hold-seat, POST /book-seat, POST /release-seat,
// POST /cancel-booking, GET /ws (upgrade). RPC: getSeats, holdSeat, assignSeat, releaseSeat,
// cancelBooking (same JSON bodies). Sockets are hibernatable: a socket may send
// {"type":"getSeats"}, and the heartbeat {"type":"ping",...} is answered by the runtime
// without waking the flight.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/actor.hpp"
#include "cairn/context.hpp"
#include "cairn/sql.hpp"

namespace cairn::actors {

struct FlightOptions {
  // How long a hold lasts (cairn-server --hold-seconds).
  std::chrono::milliseconds hold_duration{std::chrono::seconds(120)};
};

class Flight final : public Actor {
 public:
  static constexpr int rows = 10;
  static constexpr int seats_per_row = 6;
  static constexpr std::size_t max_name_bytes = 64;
  static constexpr std::size_t max_token_bytes = 64;
  // The seats table's history, for Sql::migrate: the schema's version is its length.
  static const std::vector<Migration>& schema();

  // Creates the seats table with 60 available seats if it does not exist, and adds the hold
  // and token columns to a table made by an older version (idempotent).
  explicit Flight(Context& ctx, FlightOptions options = {});

  Methods methods() override;
  Response fetch(const Request& request) override;
  void on_message(WebSocket& socket, std::string_view message, bool binary) override;
  void on_alarm(const AlarmInfo& alarm) override;

  // Every seat in order: [{"seatNumber": "1A", "occupant": null, "state": "available"}, ...];
  // a held seat also has "heldUntil" (ms since the epoch). Tokens are never shown.
  nlohmann::json get_seats();
  // Holds an available seat: {"seatNumber", "holdToken", "expiresAt" (ms since the epoch)}.
  // conflict if it is held or booked.
  Result<nlohmann::json> hold_seat(const std::string& seat);
  // Books `seat` for `name`: an available seat, or one held with `hold_token`. A passenger
  // already seated on this flight moves only with that booking's `booking_token`.
  // Answers {"message", "status", "seatNumber", "bookingToken"}.
  Result<nlohmann::json> assign_seat(const std::string& seat, const std::string& name,
                                     const std::optional<std::string>& hold_token = {},
                                     const std::optional<std::string>& booking_token = {});
  // Ends a hold early; forbidden without the hold's token.
  Result<nlohmann::json> release_seat(const std::string& seat, const std::string& hold_token);
  // Cancels a booking; forbidden without the booking's token.
  Result<nlohmann::json> cancel_booking(const std::string& seat, const std::string& booking_token);

 private:
  struct SeatRow {
    std::optional<std::string> occupant;
    std::optional<std::string> hold_token;
    std::optional<std::int64_t> held_until;
    std::optional<std::string> booking_token;
  };
  // The RPC methods and the POST routes share this: parses `args` and runs `method`.
  Result<nlohmann::json> call(std::string_view method, const nlohmann::json& args);
  std::optional<SeatRow> read_seat(const std::string& seat);
  // Clears the hold on `seat` if it expired by now; true if it did.
  bool expire_hold(const std::string& seat, SeatRow& row);
  std::int64_t now_ms() const;
  // Every change ends with this: forgets the cached seat map, sends the new one to every socket.
  void broadcast_seats();
  // The seat map as JSON text. Members are a cache: it is rebuilt from SQL after every change
  // (broadcast_seats, expire_hold) and when the soonest hold in it expires. Only reads that
  // follow an event's last write fill it, so a rolled-back event cannot leave it wrong (a
  // failed commit resets the instance, and the cache with it).
  std::shared_ptr<const std::string> seats_text();
  Context& ctx_;
  FlightOptions options_;
  std::shared_ptr<const std::string> seats_text_;
  std::int64_t seats_text_valid_until_ = 0;  // ms since the epoch
};

}  // namespace cairn::actors
