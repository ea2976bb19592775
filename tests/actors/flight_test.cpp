#include "flight/flight.hpp"

#include <doctest/doctest.h>

#include "cairn/runtime.hpp"
#include "recording_sink.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;

namespace {

struct FlightFixture {
  TempDir dir;
  std::unique_ptr<Runtime> runtime = make();

  std::unique_ptr<Runtime> make() {
    Registry registry;
    registry.add<actors::Flight>("FLIGHT");
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    return std::make_unique<Runtime>(std::move(registry), options);
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
  CHECK(seats[0] == json{{"seatNumber", "1A"}, {"occupant", nullptr}});
  CHECK(seats[5]["seatNumber"] == "1F");
  CHECK(seats[59]["seatNumber"] == "10F");
  for (const auto& s : seats) CHECK(s["occupant"].is_null());
}

TEST_CASE("booking a free seat succeeds with the tutorial's message") {
  FlightFixture f;
  auto result = book(f.flight("1"), "3C", "Ann");
  REQUIRE(result.ok());
  CHECK(*result == json{{"message", "Seat 3C booked successfully"}, {"status", 200}});
  CHECK(seat(testing::call(f.flight("1"), "getSeats").value(), "3C")["occupant"] == "Ann");
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

TEST_CASE("a passenger who books again moves, as in the tutorial") {
  FlightFixture f;
  REQUIRE(book(f.flight("1"), "1A", "Ann").ok());
  REQUIRE(book(f.flight("1"), "2B", "Ann").ok());
  auto seats = testing::call(f.flight("1"), "getSeats").value();
  CHECK(seat(seats, "1A")["occupant"].is_null());
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

TEST_CASE("a flight's socket may ask for the seats; other messages get a JSON error") {
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
