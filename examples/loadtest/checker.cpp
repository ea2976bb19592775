#include "checker.hpp"

#include <set>
#include <stdexcept>

namespace cairn::load {

namespace {
constexpr std::size_t max_examples = 10;
}

std::map<std::string, std::string> occupants(const nlohmann::json& seats) {
  if (!seats.is_array()) throw std::runtime_error("not a JSON array");
  std::map<std::string, std::string> out;
  for (const auto& seat : seats) {
    if (!seat.is_object() || !seat.contains("seatNumber") || !seat["seatNumber"].is_string()) {
      throw std::runtime_error("a seat without a seatNumber");
    }
    const auto& occupant = seat.value("occupant", nlohmann::json());
    out[seat["seatNumber"].get<std::string>()] = occupant.is_string() ? occupant.get<std::string>() : "";
  }
  return out;
}

std::string BookingCheck::summary() const {
  return std::to_string(acknowledged) + " acknowledged, " + std::to_string(present) + " present, " +
         std::to_string(lost) + " lost, " + std::to_string(double_booked) + " double-booked seats, " +
         std::to_string(rejected_present) + " rejected but present, " + std::to_string(unexpected) +
         " on a seat never tried" + (bad_flights ? ", " + std::to_string(bad_flights) + " unreadable flights" : "");
}

BookingCheck check_bookings(const std::vector<BookingAttempt>& attempts,
                            const std::map<std::string, nlohmann::json>& final_seats) {
  using Outcome = BookingAttempt::Outcome;
  BookingCheck result;
  auto example = [&](std::string text) {
    if (result.examples.size() < max_examples) result.examples.push_back(std::move(text));
  };

  std::map<std::string, std::map<std::string, std::string>> shown;  // flight -> seat -> name
  for (const auto& [flight, body] : final_seats) {
    try {
      shown[flight] = occupants(body);
    } catch (const std::exception& e) {
      ++result.bad_flights;
      example("flight " + flight + ": final GET /seats unreadable: " + e.what());
    }
  }

  // name -> the attempt that used it; (flight, seat) -> names acknowledged for it.
  std::map<std::string, const BookingAttempt*> by_name;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> acked_for_seat;
  for (const auto& a : attempts) {
    by_name[a.name] = &a;
    if (a.outcome == Outcome::acknowledged) acked_for_seat[{a.flight, a.seat}].push_back(a.name);
  }

  for (const auto& [key, names] : acked_for_seat) {
    const auto& [flight, seat] = key;
    result.acknowledged += names.size();
    if (names.size() > 1) {
      ++result.double_booked;
      example("flight " + flight + " seat " + seat + ": acknowledged to " + std::to_string(names.size()) +
              " names (" + names[0] + ", " + names[1] + ")");
    }
    auto f = shown.find(flight);
    if (f == shown.end()) {
      result.lost += names.size();
      example("flight " + flight + ": acknowledged bookings but no final state");
      continue;
    }
    auto s = f->second.find(seat);
    std::string now = s == f->second.end() ? "" : s->second;
    for (const auto& name : names) {
      if (now == name) {
        ++result.present;
      } else {
        ++result.lost;
        example("flight " + flight + " seat " + seat + ": acknowledged for " + name + ", now " +
                (s == f->second.end() ? "no such seat" : now.empty() ? "free" : "held by " + now));
      }
    }
  }

  for (const auto& [flight, seats] : shown) {
    for (const auto& [seat, name] : seats) {
      if (name.empty()) continue;
      auto a = by_name.find(name);
      if (a == by_name.end()) continue;  // not a name of this run
      const auto& attempt = *a->second;
      if (attempt.flight != flight || attempt.seat != seat) {
        ++result.unexpected;
        example("flight " + flight + " seat " + seat + ": shows " + name + ", who tried flight " +
                attempt.flight + " seat " + attempt.seat);
      } else if (attempt.outcome == Outcome::rejected) {
        ++result.rejected_present;
        example("flight " + flight + " seat " + seat + ": shows " + name + ", whose booking was rejected");
      }
    }
  }
  return result;
}

}  // namespace cairn::load
