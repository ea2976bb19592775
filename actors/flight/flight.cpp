// Flight: seats in SQL, booking rules, broadcast to the flight's sockets.
#include "flight/flight.hpp"

#include <string_view>

namespace cairn::actors {
namespace {

bool is_seat_number(std::string_view seat) {
  if (seat.size() < 2 || seat.size() > 3) return false;
  char letter = seat.back();
  if (letter < 'A' || letter >= 'A' + Flight::seats_per_row) return false;
  std::string_view row = seat.substr(0, seat.size() - 1);
  if (row.front() == '0') return false;
  int n = 0;
  for (char c : row) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  return n >= 1 && n <= Flight::rows;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Flight::Flight(Context& ctx) : ctx_(ctx) {
  // The heartbeat never wakes an evicted flight (the rule is valid by construction).
  (void)ctx_.set_websocket_auto_response(AutoResponse::heartbeat());
  auto& sql = ctx_.sql();
  bool exists = false;
  for (const auto& table : sql.exec("PRAGMA table_list")) {
    exists = exists || std::get<std::string>(table["name"]) == "seats";
  }
  if (exists) return;
  sql.exec("CREATE TABLE seats (seatId TEXT PRIMARY KEY, occupant TEXT)");
  for (int row = 1; row <= rows; ++row) {
    for (int col = 0; col < seats_per_row; ++col) {
      sql.exec("INSERT INTO seats VALUES (?, NULL)",
               std::to_string(row) + static_cast<char>('A' + col));
    }
  }
}

Methods Flight::methods() {
  return {
      {"getSeats", [this](const nlohmann::json&) -> Result<nlohmann::json> { return get_seats(); }},
      {"assignSeat", [this](const nlohmann::json& args) { return assign_seat_json(args); }},
  };
}

nlohmann::json Flight::get_seats() {
  nlohmann::json seats = nlohmann::json::array();
  for (const auto& row : ctx_.sql().exec("SELECT seatId, occupant FROM seats ORDER BY rowid")) {
    const auto& occupant = row["occupant"];
    seats.push_back({{"seatNumber", std::get<std::string>(row["seatId"])},
                     {"occupant", std::holds_alternative<std::string>(occupant)
                                      ? nlohmann::json(std::get<std::string>(occupant))
                                      : nlohmann::json(nullptr)}});
  }
  return seats;
}

Result<nlohmann::json> Flight::assign_seat(const std::string& seat, const std::string& raw_name) {
  if (!is_seat_number(seat)) {
    return fail(Code::invalid_argument, "unknown seat '" + seat + "': seats are 1A to 10F");
  }
  std::string name(trim(raw_name));
  if (name.empty()) return fail(Code::invalid_argument, "the name must not be empty");
  if (name.size() > max_name_bytes) {
    return fail(Code::invalid_argument,
                "the name may be at most " + std::to_string(max_name_bytes) + " bytes");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return fail(Code::invalid_argument, "the name must not contain control characters");
    }
  }
  auto& sql = ctx_.sql();
  const auto& occupant = sql.exec("SELECT occupant FROM seats WHERE seatId = ?", seat).one()["occupant"];
  if (!std::holds_alternative<std::nullptr_t>(occupant)) {
    return fail(Code::conflict, "Seat " + seat + " is not available");
  }
  // One seat per passenger, as in the tutorial: booking again moves them.
  sql.exec("UPDATE seats SET occupant = NULL WHERE occupant = ?", name);
  sql.exec("UPDATE seats SET occupant = ? WHERE seatId = ?", name, seat);
  broadcast_seats();
  return nlohmann::json{{"message", "Seat " + seat + " booked successfully"}, {"status", 200}};
}

Result<nlohmann::json> Flight::assign_seat_json(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("seatNumber") || !body["seatNumber"].is_string() ||
      !body.contains("name") || !body["name"].is_string()) {
    return fail(Code::invalid_argument,
                R"(the body must be a JSON object {"seatNumber": "1A", "name": "..."} with strings)");
  }
  return assign_seat(body["seatNumber"].get<std::string>(), body["name"].get<std::string>());
}

Response Flight::fetch(const Request& request) {
  std::string_view path = request.path();
  if (path == "/seats") {
    if (request.method != "GET") return Response::error(Code::method_not_allowed, "use GET /seats");
    return Response::json(200, get_seats());
  }
  if (path == "/book-seat") {
    if (request.method != "POST") {
      return Response::error(Code::method_not_allowed, "use POST /book-seat");
    }
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded()) return Response::error(Code::invalid_argument, "the body is not valid JSON");
    auto result = assign_seat_json(body);
    return result ? Response::json(200, *result) : Response::error(result.error());
  }
  if (path == "/ws") {
    if (!request.is_websocket_upgrade()) {
      return Response::json(426, {{"error", "GET /ws expects a WebSocket upgrade"}, {"status", 426}});
    }
    auto accepted = ctx_.accept_websocket(request);
    return accepted ? std::move(*accepted) : Response::error(accepted.error());
  }
  return Response::error(Code::not_found, "no route for " + std::string(path));
}

void Flight::on_message(WebSocket& socket, std::string_view message, bool binary) {
  auto reply_error = [&](const std::string& what) {
    socket.send(nlohmann::json{{"error", what}, {"status", 400}}.dump());
  };
  if (binary) return reply_error("binary messages are not understood; send JSON text");
  auto parsed = nlohmann::json::parse(message, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("type") || !parsed["type"].is_string()) {
    return reply_error(R"(a message must be a JSON object with a "type", e.g. {"type":"getSeats"})");
  }
  const auto& type = parsed["type"].get_ref<const std::string&>();
  if (type == "getSeats") return socket.send(get_seats().dump());
  reply_error("unknown message type '" + type + "'");
}

void Flight::broadcast_seats() {
  auto message = std::make_shared<const std::string>(get_seats().dump());
  for (auto& socket : ctx_.websockets()) socket.send(message);
}

}  // namespace cairn::actors
