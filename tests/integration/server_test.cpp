// The real cairn-server on an ephemeral loopback port, driven by real Beast clients.
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "clients.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;

namespace {

json seat(const json& seats, const std::string& number) {
  for (const auto& s : seats) {
    if (s["seatNumber"] == number) return s;
  }
  return nullptr;
}

void check_error(const HttpReply& reply, int status) {
  CHECK(reply.status == status);
  auto body = json::parse(reply.body, nullptr, false);
  REQUIRE_MESSAGE(body.is_object(), reply.body);
  CHECK(body["status"] == status);
  CHECK(body["error"].is_string());
  CHECK(reply.content_type == "application/json");
}

}  // namespace

TEST_CASE("a new flight answers 60 seats and a booking is kept") {
  TempDir dir;
  ServerProcess server(dir.path());
  auto seats = http_get(server.port(), "/seats?flightId=1234");
  REQUIRE(seats.status == 200);
  CHECK(seats.content_type == "application/json");
  CHECK(json::parse(seats.body).size() == 60);
  auto booked = http_post(server.port(), "/book-seat?flightId=1234", R"({"seatNumber":"1A","name":"Ann"})");
  CHECK(booked.status == 200);
  auto answer = json::parse(booked.body);
  CHECK(answer["message"] == "Seat 1A booked successfully");
  CHECK(answer["status"] == 200);
  CHECK(answer["bookingToken"].is_string());
  CHECK(seat(json::parse(http_get(server.port(), "/seats?flightId=1234").body), "1A")["occupant"] == "Ann");
  auto again = http_post(server.port(), "/book-seat?flightId=1234", R"({"seatNumber":"1A","name":"Bob"})");
  check_error(again, 409);
}

TEST_CASE("of 50 concurrent bookings of one seat exactly one succeeds") {
  TempDir dir;
  ServerProcess server(dir.path());
  std::atomic<int> ok{0}, conflict{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] {
      try {
        auto r = http_post(server.port(), "/book-seat?flightId=race",
                           json{{"seatNumber", "5C"}, {"name", "p" + std::to_string(i)}}.dump());
        (r.status == 200 ? ok : r.status == 409 ? conflict : other)++;
      } catch (const std::exception&) {
        other++;
      }
    });
  }
  for (auto& c : clients) c.join();
  CHECK(ok.load() == 1);
  CHECK(conflict.load() == 49);
  CHECK(other.load() == 0);
  auto seats = json::parse(http_get(server.port(), "/seats?flightId=race").body);
  CHECK(seat(seats, "5C")["occupant"].is_string());
}

TEST_CASE("both sockets of a flight get the new seat map, and another flight's socket does not") {
  TempDir dir;
  ServerProcess server(dir.path());
  WsClient first(server.port(), "/ws?flightId=A");
  WsClient second(server.port(), "/ws?flightId=A");
  WsClient elsewhere(server.port(), "/ws?flightId=B");
  REQUIRE(http_post(server.port(), "/book-seat?flightId=A", R"({"seatNumber":"2B","name":"Kim"})").status == 200);
  for (WsClient* client : {&first, &second}) {
    auto message = client->read();
    REQUIRE(message.has_value());
    auto seats = json::parse(*message);
    CHECK(seats.size() == 60);
    CHECK(seat(seats, "2B")["occupant"] == "Kim");
  }
  // Flight B's first message must be B's own booking: A's broadcast never reached it.
  REQUIRE(http_post(server.port(), "/book-seat?flightId=B", R"({"seatNumber":"9F","name":"Lu"})").status == 200);
  auto message = elsewhere.read();
  REQUIRE(message.has_value());
  auto seats = json::parse(*message);
  CHECK(seat(seats, "9F")["occupant"] == "Lu");
  CHECK(seat(seats, "2B")["occupant"].is_null());
}

TEST_CASE("a client that closes cleanly gets its close code back, never 1006") {
  TempDir dir;
  ServerProcess server(dir.path());
  WsClient client(server.port(), "/ws?flightId=close");
  CHECK(client.close(websocket::close_code::normal) == 1000);
  WsClient away(server.port(), "/ws?flightId=close");
  CHECK(away.close(websocket::close_code::going_away) == 1001);
  CHECK(http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("bookings survive a stop and a restart on the same data directory") {
  TempDir dir;
  {
    ServerProcess server(dir.path());
    REQUIRE(http_post(server.port(), "/book-seat?flightId=keep", R"({"seatNumber":"7E","name":"Max"})").status == 200);
    CHECK(server.stop() == 0);  // SIGTERM: a clean exit
  }
  ServerProcess again(dir.path());
  auto seats = json::parse(http_get(again.port(), "/seats?flightId=keep").body);
  CHECK(seat(seats, "7E")["occupant"] == "Max");
  CHECK(seat(seats, "7D")["occupant"].is_null());
}

TEST_CASE("every bad input gets its status and a JSON error, and the server keeps serving") {
  TempDir dir;
  ServerProcess server(dir.path());
  auto port = server.port();
  check_error(http_get(port, "/seats"), 400);                       // no flightId
  check_error(http_get(port, "/seats?flightId="), 400);             // empty
  check_error(http_get(port, "/seats?flightId=%G1"), 400);          // bad escape
  check_error(http_get(port, "/seats?flightId=" + std::string(300, 'x')), 400);
  check_error(http_post(port, "/book-seat?flightId=1", "{nope"), 400);
  check_error(http_post(port, "/book-seat?flightId=1", R"({"seatNumber":"Z9","name":"A"})"), 400);
  check_error(http_post(port, "/book-seat?flightId=1", R"({"seatNumber":"1A","name":""})"), 400);
  check_error(http_post(port, "/book-seat?flightId=1", json{{"seatNumber", "1A"}, {"name", std::string(65, 'n')}}.dump()), 400);
  check_error(http_post(port, "/book-seat?flightId=1", std::string(70 * 1024, ' ')), 413);
  check_error(http_get(port, "/book-seat?flightId=1"), 405);
  check_error(http_get(port, "/ws?flightId=1"), 426);
  check_error(http_get(port, "/no/such/page"), 404);
  check_error(http_get(port, "/../../etc/passwd"), 404);
  check_error(HttpClient(port).raw("GARBAGE\x01 / HTTP/1.1\r\n\r\n"), 400);
  CHECK(http_get(port, "/healthz").status == 200);
  CHECK(json::parse(http_get(port, "/seats?flightId=1").body).size() == 60);  // nothing was booked
  for (const auto& s : json::parse(http_get(port, "/seats?flightId=1").body)) CHECK(s["occupant"].is_null());
}

TEST_CASE("the demo page is served at / with its content type, over keep-alive") {
  TempDir dir;
  ServerProcess server(dir.path());
  HttpClient client(server.port());
  auto page = client.request(http::verb::get, "/");
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body.find("Flight Seat Booking") != std::string::npos);
  auto with_query = client.request(http::verb::get, "/?flightId=1234");
  CHECK(with_query.status == 200);
  CHECK(with_query.body == page.body);
  CHECK(client.request(http::verb::get, "/healthz").status == 200);
}

TEST_CASE("with --max-live-instances the server's descriptors stay bounded over many flights") {
  TempDir dir;
  ServerProcess server(dir.path(), {"--max-live-instances", "4", "--idle-timeout", "60"});
  auto open_descriptors = [&] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(server.pid()) + "/fd")) {
      ++n;
    }
    return n;
  };
  HttpClient http(server.port());
  REQUIRE(http.request(http::verb::get, "/seats?flightId=warm").status == 200);
  auto before = open_descriptors();
  for (int i = 0; i < 40; ++i) {
    auto flight = "fd" + std::to_string(i);
    auto booked = http.request(http::verb::post, "/book-seat?flightId=" + flight,
                               json{{"seatNumber", "3C"}, {"name", flight}}.dump());
    REQUIRE(booked.status == 200);
  }
  // 40 flights touched, at most 4 databases (2 descriptors each) open.
  CHECK(open_descriptors() <= before + 8);
  for (int i = 0; i < 40; i += 7) {
    auto flight = "fd" + std::to_string(i);
    auto seats = json::parse(http.request(http::verb::get, "/seats?flightId=" + flight).body);
    CHECK(seat(seats, "3C")["occupant"] == flight);
  }
  auto health = json::parse(http.request(http::verb::get, "/healthz").body);
  CHECK(health["live_instances"].get<int>() <= 4);
}

TEST_CASE("an idle flight leaves memory by itself and its socket stays open") {
  TempDir dir;
  ServerProcess server(dir.path(), {"--idle-timeout", "0.2"});
  WsClient socket(server.port(), "/ws?flightId=sleepy");
  HttpClient http(server.port());
  // The sweep runs a few times per timeout of real time: wait for it, bounded.
  bool hibernated = false;
  for (int i = 0; i < 100 && !hibernated; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto health = json::parse(http.request(http::verb::get, "/healthz").body);
    hibernated = health["live_instances"] == 0 && health["websockets"] == 1;
  }
  REQUIRE(hibernated);
  REQUIRE(http.request(http::verb::post, "/book-seat?flightId=sleepy",
                       R"({"seatNumber":"9F","name":"Ida"})").status == 200);
  auto seats = json::parse(*socket.read());
  CHECK(seat(seats, "9F")["occupant"] == "Ida");
}

TEST_CASE("hold, 409 for everyone else, expiry broadcast to the flight's sockets, then free") {
  TempDir dir;
  ServerProcess server(dir.path(), {"--hold-seconds", "1"});
  auto port = server.port();
  WsClient watcher(port, "/ws?flightId=hold");
  auto held = http_post(port, "/hold-seat?flightId=hold", R"({"seatNumber":"3C"})");
  REQUIRE(held.status == 200);
  auto token = json::parse(held.body)["holdToken"].get<std::string>();
  auto update = watcher.read();
  REQUIRE(update);
  CHECK(seat(json::parse(*update), "3C")["state"] == "held");

  check_error(http_post(port, "/hold-seat?flightId=hold", R"({"seatNumber":"3C"})"), 409);
  check_error(http_post(port, "/book-seat?flightId=hold", R"({"seatNumber":"3C","name":"Bob"})"), 409);
  check_error(http_post(port, "/release-seat?flightId=hold",
                        json{{"seatNumber", "3C"}, {"holdToken", "not-mine"}}.dump()), 403);

  // Nobody books it: after a second the alarm releases it and the watcher is told.
  auto expired = watcher.read(std::chrono::seconds(10));
  REQUIRE(expired);
  CHECK(seat(json::parse(*expired), "3C") == json{{"seatNumber", "3C"}, {"occupant", nullptr}, {"state", "available"}});
  check_error(http_post(port, "/release-seat?flightId=hold",
                        json{{"seatNumber", "3C"}, {"holdToken", token}}.dump()), 409);

  // Hold -> book with the token -> cancel needs the booking token.
  auto again = json::parse(http_post(port, "/hold-seat?flightId=hold", R"({"seatNumber":"3C"})").body);
  auto booked = http_post(port, "/book-seat?flightId=hold",
                          json{{"seatNumber", "3C"}, {"name", "Ann"}, {"holdToken", again["holdToken"]}}.dump());
  REQUIRE(booked.status == 200);
  auto booking = json::parse(booked.body)["bookingToken"].get<std::string>();
  check_error(http_post(port, "/book-seat?flightId=hold", R"({"seatNumber":"4C","name":"Ann"})"), 409);
  check_error(http_post(port, "/cancel-booking?flightId=hold",
                        json{{"seatNumber", "3C"}, {"bookingToken", "guess"}}.dump()), 403);
  CHECK(http_post(port, "/cancel-booking?flightId=hold",
                  json{{"seatNumber", "3C"}, {"bookingToken", booking}}.dump()).status == 200);
  auto seats = json::parse(http_get(port, "/seats?flightId=hold").body);
  CHECK(seat(seats, "3C")["state"] == "available");
}

TEST_CASE("a hold that expired while the server was stopped is released right after restart") {
  TempDir dir;
  {
    ServerProcess server(dir.path(), {"--hold-seconds", "1"});
    REQUIRE(http_post(server.port(), "/hold-seat?flightId=down", R"({"seatNumber":"8B"})").status == 200);
    auto health = json::parse(http_get(server.port(), "/healthz").body);
    CHECK(health["actors_with_alarms"] == 1);
    CHECK(server.stop() == 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // the hold falls due while down
  ServerProcess again(dir.path(), {"--hold-seconds", "1"});
  // Nobody asks for flight "down": the alarm alone wakes it, from the index.
  bool fired = false;
  for (int i = 0; i < 100 && !fired; ++i) {
    auto health = json::parse(http_get(again.port(), "/healthz").body);
    fired = health["alarms_run"] == 1 && health["actors_with_alarms"] == 0;
    if (!fired) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(fired);
  CHECK(seat(json::parse(http_get(again.port(), "/seats?flightId=down").body), "8B")["state"] == "available");
}
