#include "routes.hpp"

#include <doctest/doctest.h>

#include "cairn/limits.hpp"

using namespace cairn;
using cairn::gateway::match_route;
using cairn::gateway::Route;

namespace {
const std::vector<Route> routes{{"/seats", "FLIGHT", "flightId"}, {"/ws", "FLIGHT", "flightId"}};
Request at(std::string target) { return Request{"GET", std::move(target), {}, {}, 0}; }
}  // namespace

TEST_CASE("a route's actor name comes from its query parameter, percent-decoded") {
  auto matched = match_route(routes, at("/seats?x=1&flightId=LH%20400"));
  REQUIRE(matched.has_value());
  REQUIRE(matched->ok());
  CHECK((*matched)->name == "LH 400");
  CHECK((*matched)->route->binding == "FLIGHT");
  CHECK(!match_route(routes, at("/index.html?flightId=1")).has_value());
}

TEST_CASE("a route with a fixed name sends every request to that one instance") {
  const std::vector<Route> fixed{{"/websocket", "ECHO", "", "foo"}};
  auto matched = match_route(fixed, at("/websocket?flightId=other"));
  REQUIRE(matched.has_value());
  REQUIRE(matched->ok());
  CHECK((*matched)->name == "foo");
  CHECK(!match_route(fixed, at("/websocketx")).has_value());
}

TEST_CASE("a route with a default name uses it only when the parameter is absent") {
  const std::vector<Route> map{{"/api/map", "MAP", "id", "", "default-map"}};
  CHECK((*match_route(map, at("/api/map")))->name == "default-map");
  CHECK((*match_route(map, at("/api/map?id=team")))->name == "team");
  CHECK(!match_route(map, at("/api/map?id=")).value().ok());  // present but empty: 400
}

TEST_CASE("a missing, empty, over-long or malformed actor name is invalid_argument") {
  for (std::string target :
       {std::string("/seats"), std::string("/seats?flightId="), std::string("/seats?flightId=%zz"),
        std::string("/seats?flightId=a%0Ab"),
        "/seats?flightId=" + std::string(limits::max_actor_name_bytes + 1, 'x')}) {
    auto matched = match_route(routes, at(target));
    REQUIRE(matched.has_value());
    CHECK_MESSAGE(!matched->ok(), target);
    if (!matched->ok()) {
      CHECK(matched->error().code == Code::invalid_argument);
      CHECK(matched->error().message.find("flightId") != std::string::npos);
    }
  }
}

TEST_CASE("the generic route splits /objects/<BINDING>/<name>/<rest> and keeps the query") {
  using cairn::gateway::match_object_route;
  const std::vector<std::string> bindings{"FLIGHT"};
  CHECK(!match_object_route(bindings, "/seats?flightId=1").has_value());
  CHECK(!match_object_route(bindings, "/objectsX/FLIGHT/a").has_value());
  auto full = match_object_route(bindings, "/objects/FLIGHT/LH%20400/book-seat?x=1");
  REQUIRE(full.has_value());
  REQUIRE(full->ok());
  CHECK((*full)->binding == "FLIGHT");
  CHECK((*full)->name == "LH 400");
  CHECK((*full)->target == "/book-seat?x=1");
  auto plus = match_object_route(bindings, "/objects/FLIGHT/a+b");
  REQUIRE(plus->ok());
  CHECK((*plus)->name == "a+b");  // '+' is not a space in a path
  CHECK((*plus)->target == "/");
  CHECK(match_object_route(bindings, "/objects/OTHER/a/seats")->error().code == Code::not_found);
  CHECK(match_object_route(bindings, "/objects/FLIGHT//seats")->error().code == Code::invalid_argument);
  CHECK(match_object_route(bindings, "/objects/FLIGHT/%2/seats")->error().code == Code::invalid_argument);
  CHECK(match_object_route(bindings, "/objects/FLIGHT/a%0Ab/seats")->error().code == Code::invalid_argument);
  auto long_name = match_object_route(
      bindings, "/objects/FLIGHT/" + std::string(limits::max_actor_name_bytes + 1, 'n'));
  CHECK(long_name->error().message.find("limits::max_actor_name_bytes") != std::string::npos);
}
