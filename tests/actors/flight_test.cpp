#include "flight/flight.hpp"

#include <doctest/doctest.h>

#include "data_layout.hpp"

#include <sqlite3.h>

#include <cctype>

#include "cairn/admin.hpp"
#include "cairn/runtime.hpp"
#include "recording_sink.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;

namespace {

using namespace std::chrono_literals;

struct FlightFixture {
  TempDir dir;
  // 2026-11-23T00:00:00Z: holds expire by this clock, never by the wall's.
  std::shared_ptr<ManualClock> clock =
      std::make_shared<ManualClock>(Clock::time_point{std::chrono::seconds(1'795'392'000)});
  std::unique_ptr<Runtime> runtime = make();

  std::unique_ptr<Runtime> make() {
    Registry registry;
    registry.add("FLIGHT", [](Context& ctx) {
      return std::make_unique<actors::Flight>(ctx, actors::FlightOptions{120s});
    });
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.clock = clock;
    return std::make_unique<Runtime>(std::move(registry), options);
  }
  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock->now().time_since_epoch()).count();
  }
  Stub flight(const std::string& id) { return *runtime->get("FLIGHT", id); }
  // Opens a WebSocket on flight `id` (GET /ws accepted); returns its sink and id.
  std::pair<std::shared_ptr<testing::RecordingSink>, SocketId> open_socket(const std::string& id) {
    auto sink = std::make_shared<testing::RecordingSink>();
    Request upgrade = testing::get("/ws?flightId=" + id);
    upgrade.headers = {{"Upgrade", "websocket"}};
    upgrade.websocket = runtime->reserve_socket(sink);
    REQUIRE(testing::fetch(flight(id), upgrade).status == 101);
    return {sink, upgrade.websocket};
  }
};

Result<json> book(const Stub& stub, const std::string& seat, const std::string& name) {
  return testing::call(stub, "assignSeat", {{"seatNumber", seat}, {"name", name}});
}

json seat(const json& seats, const std::string& number) {
  for (const auto& s : seats) {
    if (s["seatNumber"] == number) return s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a new flight has 60 empty seats, 1A to 10F in order") {
  FlightFixture f;
  auto seats = testing::call(f.flight("1234"), "getSeats").value();
  REQUIRE(seats.size() == 60);
  CHECK(seats[0] == json{{"seatNumber", "1A"}, {"occupant", nullptr}, {"state", "available"}});
  CHECK(seats[5]["seatNumber"] == "1F");
  CHECK(seats[59]["seatNumber"] == "10F");
  for (const auto& s : seats) CHECK(s["occupant"].is_null());
}

bool is_token(const json& v) {
  if (!v.is_string() || v.get<std::string>().size() != 32) return false;
  for (char c : v.get<std::string>()) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

TEST_CASE("booking a free seat succeeds with the tutorial's message") {
  FlightFixture f;
  auto result = book(f.flight("1"), "3C", "Ann");
  REQUIRE(result.ok());
  CHECK((*result)["message"] == "Seat 3C booked successfully");
  CHECK((*result)["status"] == 200);
  CHECK((*result)["seatNumber"] == "3C");
  CHECK(is_token((*result)["bookingToken"]));
  auto booked = seat(testing::call(f.flight("1"), "getSeats").value(), "3C");
  CHECK(booked == json{{"seatNumber", "3C"}, {"occupant", "Ann"}, {"state", "booked"}});
}

TEST_CASE("booking an occupied seat fails with conflict and changes nothing") {
  FlightFixture f;
  REQUIRE(book(f.flight("1"), "1A", "Ann").ok());
  auto second = book(f.flight("1"), "1A", "Bob");
  REQUIRE(!second.ok());
  CHECK(second.error().code == Code::conflict);
  auto seats = testing::call(f.flight("1"), "getSeats").value();
  CHECK(seat(seats, "1A")["occupant"] == "Ann");
  for (const auto& s : seats) CHECK(s["occupant"] != "Bob");
}

TEST_CASE("unknown seats, empty, over-long or control-character names are invalid") {
  FlightFixture f;
  for (const char* bad : {"11A", "0A", "1G", "A1", "", "1", "01A", "1a", "100A"}) {
    auto result = book(f.flight("1"), bad, "Ann");
    REQUIRE(!result.ok());
    CHECK(result.error().code == Code::invalid_argument);
  }
  CHECK(book(f.flight("1"), "1A", "").error().code == Code::invalid_argument);
  CHECK(book(f.flight("1"), "1A", "   ").error().code == Code::invalid_argument);
  CHECK(book(f.flight("1"), "1A", "a\nb").error().code == Code::invalid_argument);
  auto too_long = book(f.flight("1"), "1A", std::string(actors::Flight::max_name_bytes + 1, 'x'));
  CHECK(too_long.error().message.find("64") != std::string::npos);
  CHECK(book(f.flight("1"), "1A", std::string(actors::Flight::max_name_bytes, 'x')).ok());
  auto malformed = testing::call(f.flight("1"), "assignSeat", {{"seatNumber", 1}});
  CHECK(malformed.error().code == Code::invalid_argument);
}

TEST_CASE("a passenger moves to another seat only with the booking's token") {
  FlightFixture f;
  auto first = book(f.flight("1"), "1A", "Ann");
  REQUIRE(first.ok());
  auto token = (*first)["bookingToken"].get<std::string>();
  // Someone else typing Ann's name takes nothing.
  auto typed = book(f.flight("1"), "2B", "Ann");
  REQUIRE_FALSE(typed.ok());
  CHECK(typed.error().code == Code::conflict);
  CHECK(typed.error().message.find("bookingToken") != std::string::npos);
  auto wrong = testing::call(f.flight("1"), "assignSeat",
                             {{"seatNumber", "2B"}, {"name", "Ann"}, {"bookingToken", std::string(32, '0')}});
  CHECK(wrong.error().code == Code::conflict);
  auto seats = testing::call(f.flight("1"), "getSeats").value();
  CHECK(seat(seats, "1A")["occupant"] == "Ann");
  CHECK(seat(seats, "2B")["occupant"].is_null());
  // Ann herself moves with her token, which stays hers.
  auto moved = testing::call(f.flight("1"), "assignSeat",
                             {{"seatNumber", "2B"}, {"name", "Ann"}, {"bookingToken", token}});
  REQUIRE(moved.ok());
  CHECK((*moved)["bookingToken"] == token);
  seats = testing::call(f.flight("1"), "getSeats").value();
  CHECK(seat(seats, "1A")["state"] == "available");
  CHECK(seat(seats, "2B")["occupant"] == "Ann");
}

TEST_CASE("flights are separate actors with separate seats") {
  FlightFixture f;
  REQUIRE(book(f.flight("1"), "1A", "Ann").ok());
  CHECK(seat(testing::call(f.flight("2"), "getSeats").value(), "1A")["occupant"].is_null());
}

TEST_CASE("the HTTP face answers the tutorial's routes with statuses equal to the body's") {
  FlightFixture f;
  auto stub = f.flight("7");
  auto seats = testing::fetch(stub, testing::get("/seats?flightId=7"));
  CHECK(seats.status == 200);
  CHECK(json::parse(seats.body).size() == 60);
  auto ok = testing::fetch(stub, testing::post("/book-seat?flightId=7", R"({"seatNumber":"1A","name":"Ann"})"));
  CHECK(ok.status == 200);
  CHECK(json::parse(ok.body)["status"] == 200);
  auto taken = testing::fetch(stub, testing::post("/book-seat?flightId=7", R"({"seatNumber":"1A","name":"Bo"})"));
  CHECK(taken.status == 409);
  CHECK(json::parse(taken.body)["status"] == 409);
  for (const char* body : {"not json", "[]", "{}", R"({"seatNumber":"1A"})", R"({"seatNumber":1,"name":"x"})"}) {
    auto bad = testing::fetch(stub, testing::post("/book-seat?flightId=7", body));
    CHECK(bad.status == 400);
    CHECK(json::parse(bad.body)["status"] == 400);
    CHECK(json::parse(bad.body)["error"].is_string());
  }
  CHECK(testing::fetch(stub, testing::get("/book-seat?flightId=7")).status == 405);
  CHECK(testing::fetch(stub, testing::post("/seats?flightId=7", "")).status == 405);
  auto no_upgrade = testing::fetch(stub, testing::get("/ws?flightId=7"));
  CHECK(no_upgrade.status == 426);
  CHECK(json::parse(no_upgrade.body)["status"] == 426);
  CHECK(testing::fetch(stub, testing::get("/other")).status == 404);
}

TEST_CASE("every booking broadcasts the full seat map to the flight's sockets") {
  FlightFixture f;
  auto stub = f.flight("9");
  auto [sink, socket] = f.open_socket("9");
  REQUIRE(book(stub, "4D", "Dee").ok());
  REQUIRE(!book(stub, "4D", "Eve").ok());  // a failed booking broadcasts nothing
  auto messages = sink->messages();
  REQUIRE(messages.size() == 1);
  auto seats = json::parse(messages[0]);
  CHECK(seats.size() == 60);
  CHECK(seat(seats, "4D")["occupant"] == "Dee");
}

TEST_CASE("bookings survive a restart and the constructor does not reset the seats") {
  FlightFixture f;
  REQUIRE(book(f.flight("r"), "10F", "Zed").ok());
  f.runtime->shutdown();
  f.runtime = f.make();
  auto seats = testing::call(f.flight("r"), "getSeats").value();
  CHECK(seats.size() == 60);
  CHECK(seat(seats, "10F")["occupant"] == "Zed");
}

TEST_CASE("a flight's socket may ask for the seats, other messages get a JSON error") {
  FlightFixture f;
  auto stub = f.flight("talk");
  auto [sink, socket] = f.open_socket("talk");
  REQUIRE(book(stub, "1B", "Bea").ok());
  f.runtime->socket_message(socket, R"({"type":"getSeats"})", false);
  f.runtime->socket_message(socket, "not json", false);
  f.runtime->socket_message(socket, R"({"type":"fly"})", false);
  f.runtime->socket_message(socket, "\x01\x02", true);
  f.runtime->socket_message(socket, R"({"type":"ping","id":"x","clientTime":5})", false);
  REQUIRE(testing::eventually([&] { return sink->messages().size() == 6; }));
  // The heartbeat never reaches the actor: the runtime answers it at once, so it may overtake
  // the answers to the messages before it. The rest come in order.
  std::vector<std::string> from_actor;
  std::size_t pongs = 0;
  for (const auto& m : sink->messages()) {
    if (m == R"({"type":"pong","id":"x","clientTime":5})") ++pongs;
    else from_actor.push_back(m);
  }
  CHECK(pongs == 1);
  REQUIRE(from_actor.size() == 5);
  CHECK(seat(json::parse(from_actor[1]), "1B")["occupant"] == "Bea");
  for (std::size_t i : {2u, 3u, 4u}) CHECK(json::parse(from_actor[i])["status"] == 400);
}

namespace {

Result<json> hold(const Stub& stub, const std::string& seat) {
  return testing::call(stub, "holdSeat", {{"seatNumber", seat}});
}

}  // namespace

TEST_CASE("a hold takes an available seat for the hold time, others get 409 for it") {
  FlightFixture f;
  auto stub = f.flight("h");
  auto held = hold(stub, "3C");
  REQUIRE(held.ok());
  CHECK(is_token((*held)["holdToken"]));
  CHECK((*held)["expiresAt"] == f.now_ms() + 120'000);
  CHECK((*held)["seatNumber"] == "3C");
  auto shown = seat(testing::call(stub, "getSeats").value(), "3C");
  CHECK(shown == json{{"seatNumber", "3C"}, {"occupant", nullptr}, {"state", "held"},
                      {"heldUntil", f.now_ms() + 120'000}});  // and never the token

  auto again = hold(stub, "3C");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == Code::conflict);
  auto plain = book(stub, "3C", "Bob");
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.error().code == Code::conflict);
  CHECK(plain.error().message == "Seat 3C is held by another customer");
  auto other = testing::call(stub, "assignSeat",
                             {{"seatNumber", "3C"}, {"name", "Bob"}, {"holdToken", std::string(32, 'f')}});
  CHECK(other.error().code == Code::conflict);

  // The holder books it with the token; the hold's alarm goes with it.
  auto booked = testing::call(stub, "assignSeat",
                              {{"seatNumber", "3C"}, {"name", "Ann"}, {"holdToken", (*held)["holdToken"]}});
  REQUIRE(booked.ok());
  CHECK(seat(testing::call(stub, "getSeats").value(), "3C")["state"] == "booked");
  CHECK(testing::eventually([&] { return f.runtime->stats().actors_with_alarms == 0; }));
  CHECK(hold(stub, "3C").error().code == Code::conflict);  // booked seats cannot be held
  CHECK(hold(stub, "3Z").error().code == Code::invalid_argument);
  CHECK(testing::call(stub, "holdSeat", json::object()).error().code == Code::invalid_argument);
}

TEST_CASE("an expired hold releases itself through its alarm and every socket is told") {
  FlightFixture f;
  auto stub = f.flight("x");
  auto [sink, socket] = f.open_socket("x");
  auto held = hold(stub, "5E");
  REQUIRE(held.ok());
  REQUIRE(testing::eventually([&] { return sink->messages().size() == 1; }));
  CHECK(seat(json::parse(sink->messages()[0]), "5E")["state"] == "held");
  // The flight is evicted meanwhile: the alarm brings it back.
  REQUIRE(f.runtime->evict("FLIGHT", "x").value());
  REQUIRE(testing::eventually([&] { return f.runtime->stats().live_instances == 0; }));

  f.clock->advance(119s);
  CHECK(f.runtime->fire_due_alarms() == 0);
  f.clock->advance(1s);
  f.runtime->fire_due_alarms();
  REQUIRE(testing::eventually([&] { return sink->messages().size() == 2; }));
  CHECK(seat(json::parse(sink->messages()[1]), "5E") ==
        json{{"seatNumber", "5E"}, {"occupant", nullptr}, {"state", "available"}});
  // The old token holds nothing now; the seat is free for anyone.
  auto late = testing::call(stub, "releaseSeat", {{"seatNumber", "5E"}, {"holdToken", (*held)["holdToken"]}});
  CHECK(late.error().code == Code::conflict);
  CHECK(hold(stub, "5E").ok());
}

TEST_CASE("a hold is released early only with its token") {
  FlightFixture f;
  auto stub = f.flight("r");
  auto held = hold(stub, "1A");
  REQUIRE(held.ok());
  auto wrong = testing::call(stub, "releaseSeat", {{"seatNumber", "1A"}, {"holdToken", std::string(32, 'a')}});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == Code::forbidden);
  CHECK(seat(testing::call(stub, "getSeats").value(), "1A")["state"] == "held");
  auto released = testing::call(stub, "releaseSeat", {{"seatNumber", "1A"}, {"holdToken", (*held)["holdToken"]}});
  REQUIRE(released.ok());
  CHECK(seat(testing::call(stub, "getSeats").value(), "1A")["state"] == "available");
  CHECK(testing::eventually([&] { return f.runtime->stats().actors_with_alarms == 0; }));
  CHECK(testing::call(stub, "releaseSeat", {{"seatNumber", "1A"}}).error().code == Code::invalid_argument);
}

TEST_CASE("cancelling a booking needs its token") {
  FlightFixture f;
  auto stub = f.flight("c");
  auto booked = book(stub, "2D", "Dee");
  REQUIRE(booked.ok());
  auto wrong = testing::call(stub, "cancelBooking", {{"seatNumber", "2D"}, {"bookingToken", std::string(32, 'b')}});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == Code::forbidden);
  CHECK(testing::call(stub, "cancelBooking", {{"seatNumber", "2E"}, {"bookingToken", "x"}}).error().code ==
        Code::conflict);  // not booked
  auto cancelled = testing::call(stub, "cancelBooking", {{"seatNumber", "2D"}, {"bookingToken", (*booked)["bookingToken"]}});
  REQUIRE(cancelled.ok());
  CHECK(seat(testing::call(stub, "getSeats").value(), "2D")["state"] == "available");
  CHECK(book(stub, "2D", "Eve").ok());
  // HTTP: the same, with statuses equal to the body's.
  auto http = testing::fetch(stub, testing::post("/cancel-booking?flightId=c", R"({"seatNumber":"2D","bookingToken":"nope"})"));
  CHECK(http.status == 403);
  CHECK(json::parse(http.body)["status"] == 403);
  CHECK(testing::fetch(stub, testing::get("/cancel-booking?flightId=c")).status == 405);
  CHECK(testing::fetch(stub, testing::post("/hold-seat?flightId=c", "{")).status == 400);
  auto hold_http = testing::fetch(stub, testing::post("/hold-seat?flightId=c", R"({"seatNumber":"9A"})"));
  CHECK(hold_http.status == 200);
  CHECK(is_token(json::parse(hold_http.body)["holdToken"]));
}

TEST_CASE("a flight made before holds existed gets their columns and keeps its bookings") {
  FlightFixture f;
  auto id = ActorId::make("FLIGHT", "old").value();
  auto file = detail::actor_database(f.dir.path(), id);
  std::filesystem::create_directories(file.parent_path());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "CREATE TABLE seats (seatId TEXT PRIMARY KEY, occupant TEXT);"
                       "INSERT INTO seats VALUES ('1A', 'Old'), ('1B', NULL);",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto seats = testing::call(f.flight("old"), "getSeats").value();
  CHECK(seat(seats, "1A") == json{{"seatNumber", "1A"}, {"occupant", "Old"}, {"state", "booked"}});
  CHECK(hold(f.flight("old"), "1B").ok());
  // It is now at the schema's version, as a new flight is.
  REQUIRE(testing::call(f.flight("new"), "getSeats").ok());
  for (const char* name : {"old", "new"}) {
    auto facts = Admin(*f.runtime).inspect("FLIGHT", name);
    REQUIRE(facts.ok());
    CHECK((*facts)["schema_version"] == actors::Flight::schema().size());
    CHECK((*facts)["migrations"][1]["name"] == actors::Flight::schema()[1].name);
  }
  CHECK(seat(testing::call(f.flight("new"), "getSeats").value(), "10F") ==
        json{{"seatNumber", "10F"}, {"occupant", nullptr}, {"state", "available"}});
}

TEST_CASE("GET /seats follows every change and shows a hold as free once it expires, before its alarm runs") {
  FlightFixture f;
  auto stub = f.flight("c");
  auto get = [&] {
    auto r = testing::fetch(stub, testing::get("/seats?flightId=c"));
    REQUIRE(r.status == 200);
    CHECK(r.body == testing::fetch(stub, testing::get("/seats?flightId=c")).body);  // the same twice
    return json::parse(r.body);
  };
  CHECK(seat(get(), "2B")["state"] == "available");
  auto held = hold(stub, "2B");
  REQUIRE(held.ok());
  CHECK(seat(get(), "2B")["state"] == "held");
  f.clock->advance(119s);
  CHECK(seat(get(), "2B")["state"] == "held");
  f.clock->advance(1s);  // expired; no fire_due_alarms(): the alarm has not run
  CHECK(seat(get(), "2B") == json{{"seatNumber", "2B"}, {"occupant", nullptr}, {"state", "available"}});
  REQUIRE(book(stub, "2B", "Ann").ok());
  CHECK(seat(get(), "2B")["occupant"] == "Ann");
  auto cancelled = testing::call(stub, "cancelBooking", {{"seatNumber", "2B"}, {"bookingToken", "wrong"}});
  CHECK(cancelled.error().code == Code::forbidden);
  CHECK(seat(get(), "2B")["occupant"] == "Ann");
}
