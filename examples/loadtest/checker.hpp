// The invariants a seat-booking server must keep under load, checked from the outside:
// what the harness was told (acknowledged or rejected bookings) against what the server
// shows afterwards (GET /seats of every flight it touched).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cairn::load {

struct BookingAttempt {
  enum class Outcome {
    acknowledged,  // 200: the server said the seat is booked for this name
    rejected,      // 4xx: the server said it did not book it
    unknown,       // no answer (timeout, connection lost, 5xx): may or may not have happened
  };
  std::string flight;
  std::string seat;
  std::string name;  // unique per attempt
  Outcome outcome = Outcome::unknown;
};

struct BookingCheck {
  std::uint64_t acknowledged = 0;
  std::uint64_t present = 0;          // acknowledged and shown on its seat
  std::uint64_t lost = 0;             // acknowledged, not shown
  std::uint64_t double_booked = 0;    // seats acknowledged to two or more names
  std::uint64_t rejected_present = 0; // a rejected attempt's name shown on a seat
  std::uint64_t unexpected = 0;       // a name of this run on a seat it never tried
  std::uint64_t bad_flights = 0;      // flights whose final GET /seats was not a seat array
  std::vector<std::string> examples;  // the first few violations, readable
  bool ok() const {
    return lost == 0 && double_booked == 0 && rejected_present == 0 && unexpected == 0 && bad_flights == 0;
  }
  std::string summary() const;
};

// `final_seats`: flight -> the JSON body of its final GET /seats (an array of
// {"seatNumber", "occupant"}). Occupants whose names no attempt used are ignored (data the
// flight had before the run).
BookingCheck check_bookings(const std::vector<BookingAttempt>& attempts,
                            const std::map<std::string, nlohmann::json>& final_seats);

// The occupant of each seat in a GET /seats body: seat -> name ("" when free). Throws
// std::runtime_error if `seats` is not an array of seat objects.
std::map<std::string, std::string> occupants(const nlohmann::json& seats);

}  // namespace cairn::load
