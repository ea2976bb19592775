// Flight: seats in SQL, booking rules, broadcast to the flight's sockets.
#include "flight/flight.hpp"

#include <algorithm>
#include <limits>
#include <random>
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

// 128 random bits as 32 hex digits: a bearer secret for a hold or a booking.
std::string new_token() {
  thread_local std::random_device random;  // the kernel's generator (opened once per thread)
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    auto word = random();
    for (int j = 0; j < 8; ++j) {
      out += hex[word & 0xF];
      word >>= 4;
    }
  }
  return out;
}

std::optional<std::string> text(const SqlValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  return std::nullopt;
}
std::optional<std::int64_t> integer(const SqlValue& v) {
  if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
  return std::nullopt;
}
nlohmann::json or_null(const std::optional<std::string>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// A request body: a JSON object whose `required` members are strings and whose `optional`
// members are strings if present. Anything else is invalid_argument quoting `shape`.
Result<nlohmann::json> parse_body(const nlohmann::json& body, std::initializer_list<const char*> required,
                                  std::initializer_list<const char*> optional, const char* shape) {
  auto bad = [&] {
    return fail(Code::invalid_argument, std::string("the body must be a JSON object ") + shape);
  };
  if (!body.is_object()) return bad();
  for (const char* key : required) {
    if (!body.contains(key) || !body[key].is_string()) return bad();
  }
  for (const char* key : optional) {
    if (body.contains(key) && !body[key].is_null() && !body[key].is_string()) return bad();
  }
  return body;
}

std::optional<std::string> optional_member(const nlohmann::json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  return body[key].get<std::string>();
}

Result<void> check_seat(const std::string& seat) {
  if (!is_seat_number(seat)) {
    return fail(Code::invalid_argument, "unknown seat '" + seat + "': seats are 1A to 10F");
  }
  return {};
}

std::string hold_alarm(const std::string& seat) { return "hold:" + seat; }

}  // namespace

Flight::Flight(Context& ctx, FlightOptions options) : ctx_(ctx), options_(options) {
  // The heartbeat never wakes an evicted flight (the rule is valid by construction).
  (void)ctx_.set_websocket_auto_response(AutoResponse::heartbeat());
  ctx_.sql().migrate(schema());
}

const std::vector<Migration>& Flight::schema() {
  // Steps are only ever appended. The first two look before they change anything: flights made
  // before the schema had versions hold the seats table, with or without the holds' columns.
  static const std::vector<Migration> steps{
      {"seats: 60 of them, 1A to 10F",
       [](Sql& sql) {
         for (const auto& table : sql.exec("PRAGMA table_list")) {
           if (std::get<std::string>(table["name"]) == "seats") return;
         }
         sql.exec("CREATE TABLE seats (seatId TEXT PRIMARY KEY, occupant TEXT)");
         for (int row = 1; row <= rows; ++row) {
           for (int col = 0; col < seats_per_row; ++col) {
             sql.exec("INSERT INTO seats (seatId) VALUES (?)", std::to_string(row) + static_cast<char>('A' + col));
           }
         }
       }},
      {"holds: a hold's token and expiry, and the booking's token",
       [](Sql& sql) {
         for (const auto& column : sql.exec("PRAGMA table_info(seats)")) {
           if (std::get<std::string>(column["name"]) == "holdToken") return;
         }
         sql.exec("ALTER TABLE seats ADD COLUMN holdToken TEXT");
         sql.exec("ALTER TABLE seats ADD COLUMN heldUntil INTEGER");
         sql.exec("ALTER TABLE seats ADD COLUMN bookingToken TEXT");
       }},
  };
  return steps;
}

Methods Flight::methods() {
  Methods out;
  for (const char* name : {"getSeats", "holdSeat", "assignSeat", "releaseSeat", "cancelBooking"}) {
    out.emplace(name, [this, name](const nlohmann::json& args) { return call(name, args); });
  }
  return out;
}

Result<nlohmann::json> Flight::call(std::string_view method, const nlohmann::json& args) {
  if (method == "getSeats") return get_seats();
  if (method == "holdSeat") {
    auto body = parse_body(args, {"seatNumber"}, {}, R"({"seatNumber": "1A"})");
    if (!body) return body.error();
    return hold_seat((*body)["seatNumber"].get<std::string>());
  }
  if (method == "assignSeat") {
    auto body = parse_body(
        args, {"seatNumber", "name"}, {"holdToken", "bookingToken"},
        R"({"seatNumber": "1A", "name": "...", "holdToken"?: "...", "bookingToken"?: "..."} with strings)");
    if (!body) return body.error();
    return assign_seat((*body)["seatNumber"].get<std::string>(), (*body)["name"].get<std::string>(),
                       optional_member(*body, "holdToken"), optional_member(*body, "bookingToken"));
  }
  if (method == "releaseSeat") {
    auto body = parse_body(args, {"seatNumber", "holdToken"}, {},
                           R"({"seatNumber": "1A", "holdToken": "..."})");
    if (!body) return body.error();
    return release_seat((*body)["seatNumber"].get<std::string>(), (*body)["holdToken"].get<std::string>());
  }
  if (method == "cancelBooking") {
    auto body = parse_body(args, {"seatNumber", "bookingToken"}, {},
                           R"({"seatNumber": "1A", "bookingToken": "..."})");
    if (!body) return body.error();
    return cancel_booking((*body)["seatNumber"].get<std::string>(),
                          (*body)["bookingToken"].get<std::string>());
  }
  return fail(Code::not_found, "Flight has no method '" + std::string(method) + "'");
}

std::int64_t Flight::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.now().time_since_epoch()).count();
}

std::shared_ptr<const std::string> Flight::seats_text() {
  auto now = now_ms();
  if (!seats_text_ || now >= seats_text_valid_until_) {
    auto seats = get_seats();
    seats_text_valid_until_ = std::numeric_limits<std::int64_t>::max();
    for (const auto& seat : seats) {
      if (seat.contains("heldUntil")) seats_text_valid_until_ = std::min(seats_text_valid_until_, seat["heldUntil"].get<std::int64_t>());
    }
    seats_text_ = std::make_shared<const std::string>(seats.dump());
  }
  return seats_text_;
}

nlohmann::json Flight::get_seats() {
  auto now = now_ms();
  nlohmann::json seats = nlohmann::json::array();
  for (const auto& row :
       ctx_.sql().exec("SELECT seatId, occupant, holdToken, heldUntil FROM seats ORDER BY rowid")) {
    auto occupant = text(row["occupant"]);
    auto held_until = integer(row["heldUntil"]);
    nlohmann::json seat{{"seatNumber", std::get<std::string>(row["seatId"])}, {"occupant", or_null(occupant)}};
    if (occupant) {
      seat["state"] = "booked";
    } else if (text(row["holdToken"]) && held_until && *held_until > now) {
      seat["state"] = "held";
      seat["heldUntil"] = *held_until;
    } else {
      seat["state"] = "available";
    }
    seats.push_back(std::move(seat));
  }
  return seats;
}

std::optional<Flight::SeatRow> Flight::read_seat(const std::string& seat) {
  auto found = ctx_.sql().exec(
      "SELECT occupant, holdToken, heldUntil, bookingToken FROM seats WHERE seatId = ?", seat);
  if (found.size() != 1) return std::nullopt;
  const auto& row = found.one();
  return SeatRow{text(row["occupant"]), text(row["holdToken"]), integer(row["heldUntil"]),
                 text(row["bookingToken"])};
}

bool Flight::expire_hold(const std::string& seat, SeatRow& row) {
  if (!row.hold_token || (row.held_until && *row.held_until > now_ms())) return false;
  seats_text_.reset();
  ctx_.sql().exec("UPDATE seats SET holdToken = NULL, heldUntil = NULL WHERE seatId = ?", seat);
  (void)ctx_.delete_alarm(hold_alarm(seat));
  row.hold_token.reset();
  row.held_until.reset();
  return true;
}

Result<nlohmann::json> Flight::hold_seat(const std::string& seat) {
  if (auto ok = check_seat(seat); !ok) return ok.error();
  auto row = read_seat(seat);
  expire_hold(seat, *row);
  if (row->occupant) return fail(Code::conflict, "Seat " + seat + " is already booked");
  if (row->hold_token) return fail(Code::conflict, "Seat " + seat + " is held by another customer");
  auto token = new_token();
  auto expires = now_ms() + options_.hold_duration.count();
  ctx_.sql().exec("UPDATE seats SET holdToken = ?, heldUntil = ? WHERE seatId = ?", token, expires, seat);
  auto alarm = ctx_.set_alarm(hold_alarm(seat), Clock::time_point{std::chrono::milliseconds(expires)});
  if (!alarm) return alarm.error();
  broadcast_seats();
  return nlohmann::json{{"seatNumber", seat}, {"holdToken", token}, {"expiresAt", expires}};
}

Result<nlohmann::json> Flight::assign_seat(const std::string& seat, const std::string& raw_name,
                                           const std::optional<std::string>& hold_token,
                                           const std::optional<std::string>& booking_token) {
  if (auto ok = check_seat(seat); !ok) return ok.error();
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
  auto row = read_seat(seat);
  expire_hold(seat, *row);
  if (row->occupant) return fail(Code::conflict, "Seat " + seat + " is not available");
  if (row->hold_token && row->hold_token != hold_token) {
    return fail(Code::conflict, "Seat " + seat + " is held by another customer");
  }
  auto& sql = ctx_.sql();
  // One seat per passenger, as in the tutorial; but only the holder of that booking's token
  // may move it (typing someone's name must not take their seat away).
  std::string token = new_token();
  auto current = sql.exec("SELECT seatId, bookingToken FROM seats WHERE occupant = ?", name);
  if (current.size() > 0) {
    const auto& other = *current.begin();
    auto other_seat = std::get<std::string>(other["seatId"]);
    auto other_token = text(other["bookingToken"]);
    if (!booking_token || !other_token || *other_token != *booking_token) {
      return fail(Code::conflict, name + " already has seat " + other_seat +
                                      " on this flight; moving needs that booking's bookingToken");
    }
    token = *other_token;
    sql.exec("UPDATE seats SET occupant = NULL, bookingToken = NULL WHERE seatId = ?", other_seat);
  }
  sql.exec(
      "UPDATE seats SET occupant = ?, bookingToken = ?, holdToken = NULL, heldUntil = NULL "
      "WHERE seatId = ?",
      name, token, seat);
  if (row->hold_token) (void)ctx_.delete_alarm(hold_alarm(seat));
  broadcast_seats();
  return nlohmann::json{{"message", "Seat " + seat + " booked successfully"},
                        {"status", 200},
                        {"seatNumber", seat},
                        {"bookingToken", token}};
}

Result<nlohmann::json> Flight::release_seat(const std::string& seat, const std::string& hold_token) {
  if (auto ok = check_seat(seat); !ok) return ok.error();
  auto row = read_seat(seat);
  if (expire_hold(seat, *row)) broadcast_seats();
  if (!row->hold_token) return fail(Code::conflict, "Seat " + seat + " is not held (the hold may have expired)");
  if (*row->hold_token != hold_token) {
    return fail(Code::forbidden, "Seat " + seat + " is held with another holdToken");
  }
  ctx_.sql().exec("UPDATE seats SET holdToken = NULL, heldUntil = NULL WHERE seatId = ?", seat);
  (void)ctx_.delete_alarm(hold_alarm(seat));
  broadcast_seats();
  return nlohmann::json{{"message", "Seat " + seat + " released"}, {"status", 200}};
}

Result<nlohmann::json> Flight::cancel_booking(const std::string& seat, const std::string& booking_token) {
  if (auto ok = check_seat(seat); !ok) return ok.error();
  auto row = read_seat(seat);
  if (!row->occupant) return fail(Code::conflict, "Seat " + seat + " is not booked");
  if (!row->booking_token || *row->booking_token != booking_token) {
    return fail(Code::forbidden, "cancelling seat " + seat + " needs its booking's bookingToken");
  }
  ctx_.sql().exec("UPDATE seats SET occupant = NULL, bookingToken = NULL WHERE seatId = ?", seat);
  broadcast_seats();
  return nlohmann::json{{"message", "Booking of seat " + seat + " cancelled"}, {"status", 200}};
}

void Flight::on_alarm(const AlarmInfo& alarm) {
  if (alarm.name.rfind("hold:", 0) != 0) return;
  std::string seat = alarm.name.substr(5);
  auto row = read_seat(seat);
  // Released, booked or held again since: that changed or deleted this alarm, but a hold
  // re-made for the same instant is still checked by its expiry.
  if (row && expire_hold(seat, *row)) broadcast_seats();
}

Response Flight::fetch(const Request& request) {
  std::string_view path = request.path();
  if (path == "/seats") {
    if (request.method != "GET") return Response::method_not_allowed("GET", "use GET /seats");
    Response response;
    response.headers.emplace_back("Content-Type", "application/json");
    response.body = *seats_text();
    return response;
  }
  if (path == "/ws") {
    if (!request.is_websocket_upgrade()) {
      return Response::json(426, {{"error", "GET /ws expects a WebSocket upgrade"}, {"status", 426}});
    }
    auto accepted = ctx_.accept_websocket(request);
    return accepted ? std::move(*accepted) : Response::error(accepted.error());
  }
  static const std::pair<std::string_view, const char*> posts[] = {
      {"/hold-seat", "holdSeat"},
      {"/book-seat", "assignSeat"},
      {"/release-seat", "releaseSeat"},
      {"/cancel-booking", "cancelBooking"},
  };
  for (const auto& [route, method] : posts) {
    if (path != route) continue;
    if (request.method != "POST") {
      return Response::method_not_allowed("POST", "use POST " + std::string(route));
    }
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded()) return Response::error(Code::invalid_argument, "the body is not valid JSON");
    auto result = call(method, body);
    return result ? Response::json(200, *result) : Response::error(result.error());
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
  if (type == "getSeats") return socket.send(seats_text());
  reply_error("unknown message type '" + type + "'");
}

void Flight::broadcast_seats() {
  seats_text_.reset();  // every change ends here
  auto sockets = ctx_.websockets();
  if (sockets.empty()) return;  // the map is rebuilt when someone asks
  auto message = seats_text();
  for (auto& socket : sockets) socket.send(message);
}

}  // namespace cairn::actors
